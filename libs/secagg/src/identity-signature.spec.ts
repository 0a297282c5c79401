import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto';
import { createCertificateAuthority, createCsr, generateKeyPair, issueSiloCertificate } from '@tessera/pki';
import { describe, expect, it } from 'vitest';

import { signWithIdentity, verifyWithIdentity } from './identity-signature';
import { SecAggErrorCode } from './secagg.exception';
import { refusalCode } from './secagg-round.test-util';

const message = new TextEncoder().encode('advertised keys');
const other = new TextEncoder().encode('other keys');

function expectSignsAndVerifies(privateKey: KeyObject, publicKey: KeyObject | string): void {
  const signature = signWithIdentity(privateKey, message);
  expect(verifyWithIdentity(publicKey, message, signature)).toBe(true);
  expect(verifyWithIdentity(publicKey, other, signature)).toBe(false);
  const tampered = signature.slice();
  tampered[tampered.length >> 1]! ^= 1;
  expect(verifyWithIdentity(publicKey, message, tampered)).toBe(false);
  expect(verifyWithIdentity(publicKey, message, new Uint8Array(3))).toBe(false);
}

describe('identity signatures over advertised keys', () => {
  it('uses the RSA silo keys the project PKI issues, verified from the silo certificate or its public key', () => {
    const ca = createCertificateAuthority({
      commonName: 'Test CA',
      validityDays: 365,
      privateKeyPem: generateKeyPair().privateKeyPem,
    });
    const silo = generateKeyPair();
    const siloId = '11111111-2222-4333-8444-555555555555';
    const { certificatePem } = issueSiloCertificate({
      ca,
      csr: createCsr({ privateKeyPem: silo.privateKeyPem, siloId }),
      siloId,
    });
    const privateKey = createPrivateKey(silo.privateKeyPem);
    expectSignsAndVerifies(privateKey, certificatePem);
    expectSignsAndVerifies(privateKey, silo.publicKeyPem);
  });

  it('also accepts ECDSA P-256 and Ed25519 identity keys', () => {
    for (const pair of [generateKeyPairSync('ec', { namedCurve: 'prime256v1' }), generateKeyPairSync('ed25519')]) {
      expectSignsAndVerifies(pair.privateKey, pair.publicKey);
    }
  });

  it('does not verify a signature under another silo’s key', () => {
    const a = generateKeyPairSync('ed25519');
    const b = generateKeyPairSync('ed25519');
    expect(verifyWithIdentity(b.publicKey, message, signWithIdentity(a.privateKey, message))).toBe(false);
  });

  it('refuses weak RSA, other curves, X25519 and public keys for signing with UNSUPPORTED_IDENTITY_KEY', () => {
    const unsupported = SecAggErrorCode.UnsupportedIdentityKey;
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(refusalCode(() => signWithIdentity(weak.privateKey, message))).toBe(unsupported);
    expect(refusalCode(() => verifyWithIdentity(weak.publicKey, message, new Uint8Array(128)))).toBe(unsupported);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    expect(refusalCode(() => signWithIdentity(p384.privateKey, message))).toBe(unsupported);
    const x25519 = generateKeyPairSync('x25519');
    expect(refusalCode(() => verifyWithIdentity(x25519.publicKey, message, new Uint8Array(64)))).toBe(unsupported);
    expect(
      refusalCode(() => signWithIdentity(createPublicKey(generateKeyPairSync('ed25519').privateKey), message)),
    ).toBe(unsupported);
    expect(refusalCode(() => verifyWithIdentity('not a pem', message, new Uint8Array(64)))).toBe(unsupported);
  });
});
