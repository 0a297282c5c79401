import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { forge } from './forge-adapter';
import {
  assertAcceptableRsaKey,
  generateKeyPair,
  KeyPairPem,
  loadPrivateKey,
  publicKeySha256,
  toForgePrivateKey,
} from './key-pair';
import { PkiErrorCode } from './pki.exception';
import { refusalCode } from './pki-fixtures.test-util';

describe('generateKeyPair', () => {
  let key: KeyPairPem;

  beforeAll(() => {
    key = generateKeyPair();
  });

  it('makes a 2048-bit RSA pair, e = 65537, as PKCS#8 and SPKI PEM', () => {
    expect(key.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(key.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const details = createPrivateKey(key.privateKeyPem).asymmetricKeyDetails;
    expect(details).toEqual({ modulusLength: 2048, publicExponent: 65537n });
    expect(createPublicKey(key.privateKeyPem).export({ type: 'spki', format: 'pem' })).toBe(key.publicKeyPem);
  });

  it("signs exactly as node-forge's own RSA does (PKCS#1 v1.5 is deterministic) (property)", () => {
    const forgeKey = forge.pki.privateKeyFromPem(key.privateKeyPem);
    const ourKey = toForgePrivateKey(loadPrivateKey(key.privateKeyPem));
    fc.assert(
      fc.property(fc.string(), (message) => {
        const digest = () => forge.md.sha256.create().update(message);
        expect(ourKey.sign(digest())).toBe(forgeKey.sign(digest()));
      }),
      { numRuns: 5 },
    );
  });

  it('refuses weak, non-RSA and unreadable keys', () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect(refusalCode(() => assertAcceptableRsaKey(weak, 'key'))).toBe(PkiErrorCode.KeyTooWeak);
    expect(refusalCode(() => assertAcceptableRsaKey(ec, 'key'))).toBe(PkiErrorCode.KeyMalformed);
    expect(refusalCode(() => loadPrivateKey('-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----'))).toBe(
      PkiErrorCode.KeyMalformed,
    );
    expect(refusalCode(() => generateKeyPair({ modulusBits: 2047 }))).toBe(PkiErrorCode.KeyTooWeak);
  });
});

describe('publicKeySha256', () => {
  const key = generateKeyPair();

  it('is the SHA-256 of the SubjectPublicKeyInfo DER, whatever PEM the key comes in', () => {
    // The body of an SPKI "PUBLIC KEY" PEM is the DER itself (RFC 7468 section 13): hash it directly.
    const der = Buffer.from(key.publicKeyPem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
    const expected = createHash('sha256').update(der).digest('hex');
    expect(publicKeySha256(key.publicKeyPem)).toBe(expected);
    expect(publicKeySha256(key.privateKeyPem)).toBe(expected);
    const pkcs1 = createPublicKey(key.publicKeyPem).export({ type: 'pkcs1', format: 'pem' }).toString();
    expect(pkcs1).toMatch(/^-----BEGIN RSA PUBLIC KEY-----/);
    expect(publicKeySha256(pkcs1)).toBe(expected);
    expect(publicKeySha256(generateKeyPair().publicKeyPem)).not.toBe(expected);
  });

  it('refuses what is not a key', () => {
    expect(refusalCode(() => publicKeySha256('-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----'))).toBe(
      PkiErrorCode.KeyMalformed,
    );
  });
});
