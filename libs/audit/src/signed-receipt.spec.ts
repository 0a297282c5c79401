import { describe, expect, it } from 'vitest';
import { publicKeyFingerprint, publicKeyPem, SignatureProblemCode } from './ed25519-signing';
import { signReceipt, verifyReceipt } from './signed-receipt';
import {
  ed25519KeyFromSeed,
  flipSignature,
  privatePem,
  RFC8032_TEST1,
  RFC8032_TEST2,
} from './audit-fixtures.test-util';

const HUB = ed25519KeyFromSeed(RFC8032_TEST1.secret);
const OTHER = ed25519KeyFromSeed(RFC8032_TEST2.secret);
const HUB_PUBLIC_PEM = publicKeyPem(HUB);

describe('receipts', () => {
  const payload = {
    studyId: 'st-1',
    roundId: 'r-7',
    siloId: 'silo-a',
    updateSha256: 'ab'.repeat(32),
    auditSeq: 42,
    accepted: true,
  };

  it('signs and verifies, binding the key id', () => {
    const receipt = signReceipt(payload, privatePem(HUB));
    expect(receipt.payload).toBe(payload);
    expect(receipt.keyId).toBe(publicKeyFingerprint(HUB));
    expect(verifyReceipt(receipt, HUB_PUBLIC_PEM)).toEqual({ ok: true, keyId: receipt.keyId });
    // Survives a JSON round trip with members in another order.
    const reordered = JSON.parse(
      JSON.stringify({
        signature: receipt.signature,
        keyId: receipt.keyId,
        payload: Object.fromEntries(Object.entries(payload).reverse()),
      }),
    ) as unknown;
    expect(verifyReceipt(reordered, HUB_PUBLIC_PEM).ok).toBe(true);
  });

  it.each<[string, (r: ReturnType<typeof signReceipt>) => unknown, SignatureProblemCode]>([
    [
      'an edited payload',
      (r) => ({ ...r, payload: { ...r.payload, accepted: false } }),
      SignatureProblemCode.BadSignature,
    ],
    [
      'a flipped signature bit',
      (r) => ({ ...r, signature: flipSignature(r.signature) }),
      SignatureProblemCode.BadSignature,
    ],
    ['another key id', (r) => ({ ...r, keyId: publicKeyFingerprint(OTHER) }), SignatureProblemCode.KeyMismatch],
    ['an array payload', (r) => ({ ...r, payload: [] }), SignatureProblemCode.Malformed],
    ['an extra member', (r) => ({ ...r, hub: 'x' }), SignatureProblemCode.Malformed],
  ])('rejects %s', (_label, tamper, code) => {
    expect(verifyReceipt(tamper(signReceipt(payload, HUB)), HUB_PUBLIC_PEM)).toMatchObject({ ok: false, code });
  });

  it('rejects a receipt checked against another hub key', () => {
    expect(verifyReceipt(signReceipt(payload, HUB), publicKeyPem(OTHER))).toMatchObject({
      ok: false,
      code: SignatureProblemCode.KeyMismatch,
    });
  });

  it('refuses payloads that are not JSON objects', () => {
    expect(() => signReceipt({ bad: Number.NaN }, HUB)).toThrow(/NaN/);
  });
});
