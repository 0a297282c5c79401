import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodePem, readDerChildren, readDerElement } from './der.util';
import { forge, toBinary } from './forge-adapter';
import {
  decryptPrivateKey,
  decryptPrivateKeyAsync,
  DEFAULT_KEY_ENCRYPTION_ITERATIONS,
  encryptPrivateKey,
  encryptPrivateKeyAsync,
  MIN_KEY_ENCRYPTION_ITERATIONS,
} from './key-encryption';
import { generateKeyPair, generateKeyPairAsync, KeyPairPem } from './key-pair';
import { PkiErrorCode } from './pki.exception';
import { refusalCode } from './pki-fixtures.test-util';

function oidAt(der: Buffer, element: { start: number; end: number }): string {
  return forge.asn1.derToOid(toBinary(der.subarray(element.start + 2, element.end)));
}

describe('encryptPrivateKey / decryptPrivateKey', () => {
  let key: KeyPairPem;
  let encrypted: string;

  beforeAll(() => {
    key = generateKeyPair();
    encrypted = encryptPrivateKey(key.privateKeyPem, 'correct horse battery staple');
  });

  it('round-trips and OpenSSL reads the result with the passphrase', () => {
    expect(encrypted).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    expect(encrypted).not.toContain(key.privateKeyPem.split('\n')[1]);
    expect(decryptPrivateKey(encrypted, 'correct horse battery staple')).toBe(key.privateKeyPem);
    const viaOpenSsl = createPrivateKey({ key: encrypted, format: 'pem', passphrase: 'correct horse battery staple' });
    expect(viaOpenSsl.export({ type: 'pkcs8', format: 'pem' })).toBe(key.privateKeyPem);
  });

  it('uses PBES2 with PBKDF2-HMAC-SHA256 (600,000 rounds) and AES-256-CBC', () => {
    // Dotted OIDs from RFC 8018 Appendix C (id-PBES2, id-PBKDF2, id-hmacWithSHA256) and NIST CSOR (aes256-CBC).
    const der = decodePem(encrypted, 'ENCRYPTED PRIVATE KEY');
    if (der === null) throw new Error('not PEM');
    const [algorithm] = readDerChildren(der, readDerElement(der, 0));
    const [pbes2Oid, pbes2Params] = readDerChildren(der, algorithm!);
    const [kdf, scheme] = readDerChildren(der, pbes2Params!);
    const [kdfOid, kdfParams] = readDerChildren(der, kdf!);
    const [salt, iterations, prf] = readDerChildren(der, kdfParams!);
    const [schemeOid, iv] = readDerChildren(der, scheme!);
    expect(oidAt(der, pbes2Oid!)).toBe('1.2.840.113549.1.5.13');
    expect(oidAt(der, kdfOid!)).toBe('1.2.840.113549.1.5.12');
    expect(oidAt(der, readDerChildren(der, prf!)[0]!)).toBe('1.2.840.113549.2.9');
    expect(oidAt(der, schemeOid!)).toBe('2.16.840.1.101.3.4.1.42');
    expect(salt!.end - salt!.contentStart).toBe(16);
    expect(iv!.end - iv!.contentStart).toBe(16);
    expect(der.readUIntBE(iterations!.contentStart, iterations!.end - iterations!.contentStart)).toBe(
      DEFAULT_KEY_ENCRYPTION_ITERATIONS,
    );
  });

  it('salts every encryption differently', () => {
    const again = encryptPrivateKey(key.privateKeyPem, 'correct horse battery staple', {
      iterations: MIN_KEY_ENCRYPTION_ITERATIONS,
    });
    expect(again).not.toBe(encrypted);
    expect(decryptPrivateKey(again, 'correct horse battery staple')).toBe(key.privateKeyPem);
  });

  it('PASSPHRASE_INVALID for a wrong passphrase, with a clear message', () => {
    expect(refusalCode(() => decryptPrivateKey(encrypted, 'Correct horse battery staple'))).toBe(
      PkiErrorCode.PassphraseInvalid,
    );
    expect(() => decryptPrivateKey(encrypted, 'wrong')).toThrow(/wrong passphrase/);
  });

  it('decrypts keys that OpenSSL encrypted itself', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const byOpenSsl = privateKey
      .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' })
      .toString();
    expect(decryptPrivateKey(byOpenSsl, 'pw')).toBe(privateKey.export({ type: 'pkcs8', format: 'pem' }));
  });

  it('KEY_MALFORMED for input that is not an encrypted key, ARGUMENT_INVALID for bad parameters', () => {
    expect(refusalCode(() => decryptPrivateKey(key.privateKeyPem, 'pw'))).toBe(PkiErrorCode.KeyMalformed);
    expect(refusalCode(() => decryptPrivateKey('garbage', 'pw'))).toBe(PkiErrorCode.KeyMalformed);
    expect(refusalCode(() => encryptPrivateKey('garbage', 'pw'))).toBe(PkiErrorCode.KeyMalformed);
    expect(refusalCode(() => encryptPrivateKey(key.privateKeyPem, ''))).toBe(PkiErrorCode.ArgumentInvalid);
    expect(refusalCode(() => decryptPrivateKey(encrypted, ''))).toBe(PkiErrorCode.ArgumentInvalid);
    expect(refusalCode(() => encryptPrivateKey(key.privateKeyPem, 'pw', { iterations: 2048 }))).toBe(
      PkiErrorCode.ArgumentInvalid,
    );
  });
});

/** The async forms move the key derivation to the thread pool; their results and refusals are the sync forms'. */
describe('encryptPrivateKeyAsync / decryptPrivateKeyAsync', () => {
  const passphrase = 'correct horse battery staple';
  let key: KeyPairPem;

  beforeAll(async () => {
    key = await generateKeyPairAsync();
  });

  it('writes what the sync decryption and OpenSSL read, and reads what the sync encryption wrote', async () => {
    const byAsync = await encryptPrivateKeyAsync(key.privateKeyPem, passphrase, {
      iterations: MIN_KEY_ENCRYPTION_ITERATIONS,
    });
    expect(decryptPrivateKey(byAsync, passphrase)).toBe(key.privateKeyPem);
    const bySync = encryptPrivateKey(key.privateKeyPem, passphrase, { iterations: MIN_KEY_ENCRYPTION_ITERATIONS });
    expect(await decryptPrivateKeyAsync(bySync, passphrase)).toBe(key.privateKeyPem);
    const viaOpenSsl = createPrivateKey({ key: byAsync, format: 'pem', passphrase });
    expect(viaOpenSsl.export({ type: 'pkcs8', format: 'pem' })).toBe(key.privateKeyPem);
  });

  it('uses the default 600,000 rounds, readable by the sync decryption', async () => {
    const byAsync = await encryptPrivateKeyAsync(key.privateKeyPem, passphrase);
    const der = decodePem(byAsync, 'ENCRYPTED PRIVATE KEY');
    if (der === null) throw new Error('not PEM');
    const [algorithm] = readDerChildren(der, readDerElement(der, 0));
    const [, pbes2Params] = readDerChildren(der, algorithm!);
    const [kdf] = readDerChildren(der, pbes2Params!);
    const [, kdfParams] = readDerChildren(der, kdf!);
    const [, count] = readDerChildren(der, kdfParams!);
    expect(der.subarray(count!.contentStart, count!.end).readUIntBE(0, count!.end - count!.contentStart)).toBe(
      DEFAULT_KEY_ENCRYPTION_ITERATIONS,
    );
    expect(decryptPrivateKey(byAsync, passphrase)).toBe(key.privateKeyPem);
  });

  it('PASSPHRASE_INVALID for a wrong passphrase or a flipped ciphertext bit', async () => {
    const encrypted = encryptPrivateKey(key.privateKeyPem, passphrase, { iterations: MIN_KEY_ENCRYPTION_ITERATIONS });
    await expect(decryptPrivateKeyAsync(encrypted, 'Correct horse battery staple')).rejects.toMatchObject({
      code: PkiErrorCode.PassphraseInvalid,
    });
    const der = decodePem(encrypted, 'ENCRYPTED PRIVATE KEY')!;
    der[der.length - 20]! ^= 0x01;
    const flipped = encrypted.replace(
      encrypted.split('\n').slice(1, -2).join('\n'),
      der
        .toString('base64')
        .match(/.{1,64}/g)!
        .join('\n'),
    );
    await expect(decryptPrivateKeyAsync(flipped, passphrase)).rejects.toMatchObject({
      code: PkiErrorCode.PassphraseInvalid,
    });
  });

  it('decrypts keys OpenSSL encrypted itself, in this scheme and in others (AES-128-CBC: decrypted by OpenSSL)', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const plain = privateKey.export({ type: 'pkcs8', format: 'pem' });
    for (const cipher of ['aes-256-cbc', 'aes-128-cbc']) {
      const byOpenSsl = privateKey.export({ type: 'pkcs8', format: 'pem', cipher, passphrase: 'pw' }).toString();
      expect(await decryptPrivateKeyAsync(byOpenSsl, 'pw')).toBe(plain);
      await expect(decryptPrivateKeyAsync(byOpenSsl, 'wrong')).rejects.toMatchObject({
        code: PkiErrorCode.PassphraseInvalid,
      });
    }
  });

  it('KEY_MALFORMED for input that is not an encrypted key, ARGUMENT_INVALID for an empty passphrase', async () => {
    await expect(decryptPrivateKeyAsync(key.privateKeyPem, 'pw')).rejects.toMatchObject({
      code: PkiErrorCode.KeyMalformed,
    });
    await expect(encryptPrivateKeyAsync('garbage', 'pw')).rejects.toMatchObject({ code: PkiErrorCode.KeyMalformed });
    await expect(encryptPrivateKeyAsync(key.privateKeyPem, '')).rejects.toMatchObject({
      code: PkiErrorCode.ArgumentInvalid,
    });
  });

  it('generateKeyPairAsync makes RSA keys of the asked size and refuses weak ones', async () => {
    const pair = await generateKeyPairAsync({ modulusBits: 3072 });
    const privateKey = createPrivateKey(pair.privateKeyPem);
    expect(privateKey.asymmetricKeyType).toBe('rsa');
    expect(privateKey.asymmetricKeyDetails?.modulusLength).toBe(3072);
    expect(() => generateKeyPairAsync({ modulusBits: 1024 })).toThrow(/at least|\[2048, 8192\]/);
  });
});
