import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodePem, readDerChildren, readDerElement } from './der.util';
import { forge, toBinary } from './forge-adapter';
import {
  decryptPrivateKey,
  DEFAULT_KEY_ENCRYPTION_ITERATIONS,
  encryptPrivateKey,
  MIN_KEY_ENCRYPTION_ITERATIONS,
} from './key-encryption';
import { generateKeyPair, KeyPairPem } from './key-pair';
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
    const [pbes2Oid, pbes2Params] = readDerChildren(der, algorithm);
    const [kdf, scheme] = readDerChildren(der, pbes2Params);
    const [kdfOid, kdfParams] = readDerChildren(der, kdf);
    const [salt, iterations, prf] = readDerChildren(der, kdfParams);
    const [schemeOid, iv] = readDerChildren(der, scheme);
    expect(oidAt(der, pbes2Oid)).toBe('1.2.840.113549.1.5.13');
    expect(oidAt(der, kdfOid)).toBe('1.2.840.113549.1.5.12');
    expect(oidAt(der, readDerChildren(der, prf)[0])).toBe('1.2.840.113549.2.9');
    expect(oidAt(der, schemeOid)).toBe('2.16.840.1.101.3.4.1.42');
    expect(salt.end - salt.contentStart).toBe(16);
    expect(iv.end - iv.contentStart).toBe(16);
    expect(der.readUIntBE(iterations.contentStart, iterations.end - iterations.contentStart)).toBe(
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
