import { type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { computeRecordHash, type AuditRecord } from './audit-record';
import { ChainBreakCode } from './chain-verifier';
import { publicKeyFingerprint, publicKeyPem, signCanonical } from './ed25519-signing';
import {
  AUDIT_BUNDLE_FORMAT,
  buildBundle,
  BundleBuildError,
  BundleProblemCode,
  verifyBundle,
  type AuditBundle,
  type BundleIssueCode,
} from './report-bundle';
import { signCheckpoint, type Checkpoint } from './signed-checkpoint';
import {
  buildChain,
  clone,
  ed25519KeyFromSeed,
  flipSignature,
  privatePem,
  RFC8032_TEST1,
  RFC8032_TEST2,
} from './audit-fixtures.test-util';

const HUB = ed25519KeyFromSeed(RFC8032_TEST1.secret);
const OTHER = ed25519KeyFromSeed(RFC8032_TEST2.secret);
const CHAIN = buildChain(12);
const STUDY = {
  studyId: 'study-1',
  title: 'Sepsis early warning',
  silos: ['silo-0', 'silo-1'],
  epsilon: { spent: 1.2, target: 3 },
};
const GENERATED_AT = '2025-03-02T00:00:00.000Z';

function checkpointAt(records: readonly AuditRecord[], seq: number, key: KeyObject = HUB): Checkpoint {
  const r = records.find((x) => x.seq === seq);
  if (r === undefined) throw new Error(`no record ${seq}`);
  return signCheckpoint({ seq, headHash: r.hash, time: r.time, count: seq }, key);
}

function wholeChainBundle(): AuditBundle {
  return buildBundle({
    records: CHAIN,
    checkpoints: [checkpointAt(CHAIN, 4), checkpointAt(CHAIN, 8)],
    study: STUDY,
    signingKey: HUB,
    generatedAt: GENERATED_AT,
  });
}

/** Re-signs a tampered bundle as the hub would (or as someone holding `key`), so only the content checks remain. */
function resign(bundle: AuditBundle, key: KeyObject = HUB): AuditBundle {
  const { signature: _old, ...rest } = bundle;
  const unsigned = { ...rest, hub: { publicKeyPem: publicKeyPem(key), keyId: publicKeyFingerprint(key) } };
  return { ...unsigned, signature: signCanonical(unsigned, key) };
}

function codes(bundle: unknown, trusted?: KeyObject): BundleIssueCode[] {
  return verifyBundle(bundle, trusted === undefined ? {} : { trustedPublicKey: trusted }).problems.map((p) => p.code);
}

describe('buildBundle / verifyBundle', () => {
  it('builds a whole-chain bundle that verifies, adding a head checkpoint', () => {
    const bundle = wholeChainBundle();
    expect(bundle.format).toBe(AUDIT_BUNDLE_FORMAT);
    expect(bundle.checkpoints.map((c) => c.seq)).toEqual([4, 8, 12]);
    expect(bundle.checkpoints[2]).toMatchObject({ headHash: CHAIN[11]!.hash, time: GENERATED_AT, count: 12 });
    const result = verifyBundle(JSON.parse(JSON.stringify(bundle)), { trustedPublicKey: publicKeyPem(HUB) });
    expect(result).toEqual({
      ok: true,
      problems: [],
      summary: {
        generatedAt: GENERATED_AT,
        records: 12,
        fromSeq: 1,
        headSeq: 12,
        headHash: CHAIN[11]!.hash,
        checkpointsVerified: 3,
        checkpointsTotal: 3,
        signerKeyId: publicKeyFingerprint(HUB),
        signerPinned: true,
      },
    });
  });

  it('verifies a segment anchored by a checkpoint before its first record', () => {
    const bundle = buildBundle({
      records: CHAIN.slice(5),
      checkpoints: [checkpointAt(CHAIN, 5), checkpointAt(CHAIN, 2)],
      study: STUDY,
      signingKey: HUB,
      generatedAt: GENERATED_AT,
    });
    // The checkpoint at seq 2 lies before the segment's anchor and is left out.
    expect(bundle.checkpoints.map((c) => c.seq)).toEqual([5, 12]);
    expect(verifyBundle(bundle)).toMatchObject({
      ok: true,
      summary: { fromSeq: 6, headSeq: 12, records: 7, checkpointsVerified: 2 },
    });
  });

  it('refuses to build what would not verify', () => {
    expect(() => buildBundle({ records: CHAIN.slice(5), study: STUDY, signingKey: HUB })).toThrow(
      /MISSING_START_ANCHOR/,
    );
    const broken = clone(CHAIN);
    broken[3]!.action = 'forged';
    expect(() => buildBundle({ records: broken, study: STUDY, signingKey: HUB })).toThrow(BundleBuildError);
    expect(() => buildBundle({ records: [], study: STUDY, signingKey: HUB })).toThrow(/at least one record/);
    expect(() =>
      buildBundle({ records: CHAIN, checkpoints: [checkpointAt(CHAIN, 4, OTHER)], study: STUDY, signingKey: HUB }),
    ).toThrow(/CHECKPOINT_KEY_MISMATCH/);
    expect(() => buildBundle({ records: CHAIN, study: STUDY, signingKey: 'nope' })).toThrow(BundleBuildError);
  });

  it('detects any change after signing (bundle signature)', () => {
    const bundle = wholeChainBundle();
    expect(codes({ ...bundle, study: { ...STUDY, title: 'Other' } })).toEqual([BundleProblemCode.SignatureInvalid]);
    expect(codes({ ...bundle, generatedAt: '2025-03-03T00:00:00.000Z' })).toEqual([BundleProblemCode.SignatureInvalid]);
    expect(codes({ ...bundle, signature: flipSignature(bundle.signature) })).toEqual([
      BundleProblemCode.SignatureInvalid,
    ]);
    expect(codes({ ...bundle, signature: '' })).toEqual([BundleProblemCode.SignatureInvalid]);
  });

  it('fails a bundle signed by another key when a key is pinned', () => {
    const forged = resign(wholeChainBundle(), OTHER);
    // Without a pin, a self-consistent forgery only fails because its checkpoints were signed by the real hub key.
    expect(codes(forged)).toContain(BundleProblemCode.CheckpointKeyMismatch);
    expect(codes(forged, HUB)).toContain(BundleProblemCode.SignerNotTrusted);
    expect(verifyBundle(wholeChainBundle(), { trustedPublicKey: OTHER })).toMatchObject({
      ok: false,
      problems: [{ code: BundleProblemCode.SignerNotTrusted }],
    });
  });

  it('fails a complete forgery (everything re-signed by another key) only through the pin', () => {
    const forgedKeyChain = clone(CHAIN);
    const forged = buildBundle({
      records: forgedKeyChain,
      study: { ...STUDY, epsilon: { spent: 0.1, target: 3 } },
      signingKey: OTHER,
      generatedAt: GENERATED_AT,
    });
    expect(verifyBundle(forged).ok).toBe(true);
    expect(verifyBundle(forged).summary?.signerKeyId).toBe(publicKeyFingerprint(OTHER));
    expect(codes(forged, HUB)).toEqual([BundleProblemCode.SignerNotTrusted]);
  });

  it('reports a hub.keyId that is not the fingerprint of the key', () => {
    const bundle = wholeChainBundle();
    const { signature: _s, ...rest } = bundle;
    const unsigned = { ...rest, hub: { ...bundle.hub, keyId: publicKeyFingerprint(OTHER) } };
    expect(codes({ ...unsigned, signature: signCanonical(unsigned, HUB) })).toEqual([
      BundleProblemCode.HubKeyIdMismatch,
    ]);
  });

  it('reports a signed checkpoint that disagrees with the chain, at its seq', () => {
    const bundle = wholeChainBundle();
    bundle.checkpoints[0] = signCheckpoint({ seq: 4, headHash: CHAIN[5]!.hash, time: GENERATED_AT }, HUB);
    const result = verifyBundle(resign(bundle));
    expect(result.problems).toEqual([expect.objectContaining({ code: BundleProblemCode.CheckpointMismatch, seq: 4 })]);
    expect(result.firstBroken).toMatchObject({ seq: 4, code: BundleProblemCode.CheckpointMismatch });
  });

  it('reports tampered, foreign, malformed, duplicate and miscounted checkpoints', () => {
    const bundle = wholeChainBundle();
    bundle.checkpoints = [
      { ...bundle.checkpoints[0]!, signature: flipSignature(bundle.checkpoints[0]!.signature) },
      checkpointAt(CHAIN, 6, OTHER),
      { ...bundle.checkpoints[1], extra: 1 } as Checkpoint,
      bundle.checkpoints[2]!,
      bundle.checkpoints[2]!,
      signCheckpoint({ seq: 10, headHash: CHAIN[9]!.hash, time: GENERATED_AT, count: 9 }, HUB),
    ];
    expect(codes(resign(bundle))).toEqual([
      BundleProblemCode.CheckpointSignatureInvalid,
      BundleProblemCode.CheckpointKeyMismatch,
      BundleProblemCode.CheckpointMalformed,
      BundleProblemCode.CheckpointDuplicate,
      BundleProblemCode.CheckpointCountMismatch,
    ]);
  });

  it('requires a start anchor for a segment and a checkpoint at its head', () => {
    const segment = buildBundle({
      records: CHAIN.slice(5),
      checkpoints: [checkpointAt(CHAIN, 5)],
      study: STUDY,
      signingKey: HUB,
      generatedAt: GENERATED_AT,
    });
    const noAnchor = resign({ ...segment, checkpoints: segment.checkpoints.slice(1) });
    expect(verifyBundle(noAnchor)).toMatchObject({
      ok: false,
      problems: [{ code: BundleProblemCode.MissingStartAnchor, seq: 5 }],
      firstBroken: { seq: 5 },
    });
    const wrongAnchor = resign({ ...segment, checkpoints: [checkpointAt(CHAIN, 4), ...segment.checkpoints.slice(1)] });
    expect(codes(wrongAnchor)).toEqual([BundleProblemCode.CheckpointOutOfRange, BundleProblemCode.MissingStartAnchor]);
    const noHead = resign({ ...wholeChainBundle(), checkpoints: [] });
    expect(verifyBundle(noHead)).toMatchObject({
      ok: false,
      problems: [{ code: BundleProblemCode.MissingHeadCheckpoint, seq: 12 }],
    });
  });

  it('reports records cut off the end or appended past the head checkpoint', () => {
    const bundle = wholeChainBundle();
    expect(verifyBundle(resign({ ...bundle, records: CHAIN.slice(0, 10) })).firstBroken).toMatchObject({
      seq: 11,
      code: ChainBreakCode.Truncated,
    });
    const longer = buildChain(13);
    expect(verifyBundle(resign({ ...bundle, records: longer })).firstBroken).toMatchObject({
      seq: 13,
      code: ChainBreakCode.BeyondHead,
    });
  });

  it('catches a rewritten history even when the hub re-signs the bundle, through earlier checkpoints', () => {
    const bundle = wholeChainBundle();
    const rewritten = clone(CHAIN);
    rewritten[1]!.details = { note: 'approval removed' };
    for (let i = 1; i < rewritten.length; i++) {
      rewritten[i]!.prevHash = rewritten[i - 1]!.hash;
      rewritten[i]!.hash = computeRecordHash(rewritten[i]!);
    }
    // The new head checkpoint is honest about the new chain, but the older checkpoints (4, 8) were published before.
    const result = verifyBundle(
      resign({
        ...bundle,
        records: rewritten,
        checkpoints: [...bundle.checkpoints.slice(0, 2), checkpointAt(rewritten, 12)],
      }),
    );
    expect(result.ok).toBe(false);
    expect(result.problems.map((p) => [p.code, p.seq])).toEqual([
      [BundleProblemCode.CheckpointMismatch, 4],
      [BundleProblemCode.CheckpointMismatch, 8],
    ]);
    expect(result.firstBroken?.seq).toBe(4);
  });

  it.each<[string, unknown, BundleProblemCode]>([
    ['a non-object', [], BundleProblemCode.Malformed],
    ['another format', { format: 'tessera.audit-bundle/2' }, BundleProblemCode.UnsupportedFormat],
    ['no format', {}, BundleProblemCode.UnsupportedFormat],
  ])('rejects %s as unreadable', (_label, input, code) => {
    expect(verifyBundle(input)).toEqual({ ok: false, problems: [expect.objectContaining({ code })] });
  });

  it.each<[string, (b: Record<string, unknown>) => void]>([
    ['an unknown member', (b) => (b.extra = 1)],
    ['a missing member', (b) => delete b.study],
    ['no records', (b) => (b.records = [])],
    ['records not an array', (b) => (b.records = {})],
    ['an unreadable hub key', (b) => (b.hub = { publicKeyPem: 'garbage', keyId: publicKeyFingerprint(HUB) })],
    [
      'a private key in place of the hub key',
      (b) => (b.hub = { publicKeyPem: privatePem(HUB), keyId: publicKeyFingerprint(HUB) }),
    ],
    ['a local generatedAt', (b) => (b.generatedAt = '2025-03-02 00:00')],
    ['a lone surrogate in the study', (b) => (b.study = { x: '\ud800' })],
  ])('rejects a bundle with %s as malformed', (_label, mutate) => {
    const bundle = clone(wholeChainBundle()) as unknown as Record<string, unknown>;
    mutate(bundle);
    expect(codes(bundle)).toEqual([BundleProblemCode.Malformed]);
  });
});

describe('bundle tamper detection (property)', () => {
  it('names the first broken seq of an edited, deleted or duplicated record', () => {
    const bundle = wholeChainBundle();
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: CHAIN.length - 1 }),
        fc.constantFrom('edit', 'delete', 'duplicate'),
        (p, kind) => {
          const records = clone(CHAIN);
          if (kind === 'edit') records[p]!.details = { ...records[p]!.details, tampered: true };
          if (kind === 'delete') records.splice(p, 1);
          if (kind === 'duplicate') records.splice(p, 0, clone(records[p]!));
          const result = verifyBundle({ ...bundle, records });
          expect(result.ok).toBe(false);
          expect(result.problems.map((x) => x.code)).toContain(BundleProblemCode.SignatureInvalid);
          const expected = kind === 'duplicate' ? p + 2 : p + 1;
          expect(result.firstBroken?.seq).toBe(expected);
        },
      ),
      { numRuns: 40 },
    );
  });
});
