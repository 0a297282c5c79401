import { createHash, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  generateSigningKey,
  publicKeyFingerprint,
  publicKeyPem,
  SignatureProblemCode,
  SigningKeyError,
} from './ed25519-signing';
import { signCheckpoint, verifyCheckpoint, type Checkpoint } from './signed-checkpoint';
import {
  ed25519KeyFromSeed,
  flipHex,
  flipSignature,
  privatePem,
  RFC8032_TEST1,
  RFC8032_TEST2,
  SPKI_ED25519_PREFIX,
} from './audit-fixtures.test-util';

const HUB = ed25519KeyFromSeed(RFC8032_TEST1.secret);
const OTHER = ed25519KeyFromSeed(RFC8032_TEST2.secret);
const HUB_PUBLIC_PEM = publicKeyPem(HUB);
const FIELDS = {
  seq: 3,
  headHash: 'e24cf54f458c8f974aec99cb10f5a414eb86c0d2101b16346f857da9e891cdb3',
  time: '2025-01-15T10:00:01.000Z',
  count: 3,
};

describe('Ed25519 keys', () => {
  // RFC 8032 §7.1 TEST 1: the secret key must yield the published public key, and the key id is SHA-256 over the
  // DER SubjectPublicKeyInfo of RFC 8410 §4 (fixed prefix + raw key), computed here independently.
  it('derives the RFC 8032 TEST 1 public key and fingerprints its SPKI DER', () => {
    const der = createPublicKey(HUB).export({ type: 'spki', format: 'der' });
    expect(der.toString('hex')).toBe(SPKI_ED25519_PREFIX + RFC8032_TEST1.public);
    const expected = createHash('sha256')
      .update(Buffer.from(SPKI_ED25519_PREFIX + RFC8032_TEST1.public, 'hex'))
      .digest('hex');
    expect(publicKeyFingerprint(HUB)).toBe(expected);
    expect(publicKeyFingerprint(HUB_PUBLIC_PEM)).toBe(expected);
    expect(publicKeyFingerprint(privatePem(HUB))).toBe(expected);
    expect(expected).toBe('06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9');
  });

  // RFC 8032 §7.1 TEST 1 signature of the empty message: checks the platform's Ed25519 is the RFC's (pure) Ed25519.
  it('signs the RFC 8032 TEST 1 vector with node:crypto', () => {
    const signature = sign(null, Buffer.alloc(0), HUB).toString('hex');
    expect(signature).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
  });

  it('generates PEM key pairs that sign and verify', () => {
    const pair = generateSigningKey();
    expect(pair.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(pair.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const cp = signCheckpoint(FIELDS, pair.privateKeyPem);
    expect(verifyCheckpoint(cp, pair.publicKeyPem)).toEqual({
      ok: true,
      keyId: publicKeyFingerprint(pair.publicKeyPem),
    });
  });

  it('refuses keys that are not Ed25519 or not keys', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => signCheckpoint(FIELDS, privateKey)).toThrow(SigningKeyError);
    expect(() => signCheckpoint(FIELDS, 'not a pem')).toThrow(/cannot read the signing key/);
    expect(() => signCheckpoint(FIELDS, createPublicKey(HUB))).toThrow(/private key/);
    expect(() => publicKeyFingerprint('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n')).toThrow(
      SigningKeyError,
    );
  });
});

describe('checkpoints', () => {
  it('signs deterministically (frozen signature of the RFC 8032 TEST 1 key)', () => {
    const cp = signCheckpoint(FIELDS, HUB);
    expect(cp).toEqual({
      ...FIELDS,
      keyId: '06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9',
      signature: 'rRq17YuUrwLL7/SSselJkLQlydFIA/Kif2xHITosdFAYd0pQ4jto81jp7ZYGeM+ctC9LE6TbT7YOf69a8RtuBA==',
    });
  });

  it('signs the canonical JSON of every field but the signature', () => {
    const cp = signCheckpoint(FIELDS, HUB);
    const text = `{"count":3,"headHash":"${FIELDS.headHash}","keyId":"${cp.keyId}","seq":3,"time":"2025-01-15T10:00:01.000Z"}`;
    expect(verify(null, Buffer.from(text, 'utf8'), createPublicKey(HUB), Buffer.from(cp.signature, 'base64'))).toBe(
      true,
    );
  });

  it('omits count when not given', () => {
    const cp = signCheckpoint({ seq: 1, headHash: FIELDS.headHash, time: FIELDS.time }, HUB);
    expect('count' in cp).toBe(false);
    expect(verifyCheckpoint(cp, HUB_PUBLIC_PEM).ok).toBe(true);
  });

  it.each<[string, (cp: Checkpoint) => unknown, SignatureProblemCode]>([
    [
      'a flipped signature bit',
      (cp) => ({ ...cp, signature: flipSignature(cp.signature) }),
      SignatureProblemCode.BadSignature,
    ],
    [
      'a truncated signature',
      (cp) => ({ ...cp, signature: cp.signature.slice(0, 40) }),
      SignatureProblemCode.BadSignature,
    ],
    ['a non-base64 signature', (cp) => ({ ...cp, signature: '!!!' }), SignatureProblemCode.BadSignature],
    ['an edited seq', (cp) => ({ ...cp, seq: 4 }), SignatureProblemCode.BadSignature],
    ['an edited headHash', (cp) => ({ ...cp, headHash: flipHex(cp.headHash) }), SignatureProblemCode.BadSignature],
    ['a removed count', ({ count: _count, ...cp }) => cp, SignatureProblemCode.BadSignature],
    ['another key id', (cp) => ({ ...cp, keyId: publicKeyFingerprint(OTHER) }), SignatureProblemCode.KeyMismatch],
    ['an extra field', (cp) => ({ ...cp, note: 'x' }), SignatureProblemCode.Malformed],
    ['a local time', (cp) => ({ ...cp, time: '2025-01-15T10:00:01+01:00' }), SignatureProblemCode.Malformed],
    ['not an object', () => 'checkpoint', SignatureProblemCode.Malformed],
  ])('rejects %s', (_label, tamper, code) => {
    const result = verifyCheckpoint(tamper(signCheckpoint(FIELDS, HUB)), HUB_PUBLIC_PEM);
    expect(result).toMatchObject({ ok: false, code });
  });

  it('rejects a checkpoint verified with the wrong public key', () => {
    const result = verifyCheckpoint(signCheckpoint(FIELDS, HUB), publicKeyPem(OTHER));
    expect(result).toMatchObject({ ok: false, code: SignatureProblemCode.KeyMismatch });
  });

  it('rejects a checkpoint re-signed by another key under the hub key id', () => {
    const forged = { ...signCheckpoint(FIELDS, OTHER), keyId: publicKeyFingerprint(HUB) };
    expect(verifyCheckpoint(forged, HUB_PUBLIC_PEM)).toMatchObject({
      ok: false,
      code: SignatureProblemCode.BadSignature,
    });
  });

  it('refuses to sign malformed fields', () => {
    expect(() => signCheckpoint({ ...FIELDS, headHash: 'abc' }, HUB)).toThrow(/headHash/);
    expect(() => signCheckpoint({ ...FIELDS, seq: 0 }, HUB)).toThrow(/seq/);
  });
});
