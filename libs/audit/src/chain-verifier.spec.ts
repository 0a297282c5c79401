import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { appendRecord, computeRecordHash, GENESIS_PREV_HASH, type AuditRecord } from './audit-record';
import { ChainBreakCode, ChainVerifier, verifyChain, type ChainVerification } from './chain-verifier';
import { buildChain, clone, flipHex, recordInput } from './audit-fixtures.test-util';

const CHAIN = buildChain(9);

function headOf(records: readonly AuditRecord[]): { seq: number; hash: string } {
  const last = records[records.length - 1]!;
  return { seq: last.seq, hash: last.hash };
}

function expectBroken(result: ChainVerification, brokenAt: number, reasons: readonly ChainBreakCode[]): void {
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.brokenAt).toBe(brokenAt);
  expect(reasons).toContain(result.reason);
  expect(result.message.length).toBeGreaterThan(0);
}

/** Ways to edit one field of a record in place, with the codes each may produce. */
const FIELD_EDITS: { name: string; edit: (r: AuditRecord) => void; reasons: ChainBreakCode[] }[] = [
  {
    name: 'details',
    edit: (r) => (r.details = { ...r.details, tampered: true }),
    reasons: [ChainBreakCode.HashMismatch],
  },
  { name: 'action', edit: (r) => (r.action = `${r.action}.forged`), reasons: [ChainBreakCode.HashMismatch] },
  {
    name: 'actor.id',
    edit: (r) => (r.actor = { ...r.actor, id: `${r.actor.id}-x` }),
    reasons: [ChainBreakCode.HashMismatch],
  },
  {
    name: 'actor.type',
    edit: (r) => (r.actor = { ...r.actor, type: r.actor.type === 'user' ? 'system' : 'user' }),
    reasons: [ChainBreakCode.HashMismatch],
  },
  {
    name: 'subject',
    edit: (r) => (r.subject = { ...r.subject, siloId: 'forged-silo' }),
    reasons: [ChainBreakCode.HashMismatch],
  },
  { name: 'time', edit: (r) => (r.time = '2030-01-01T00:00:00.000Z'), reasons: [ChainBreakCode.HashMismatch] },
  { name: 'hash', edit: (r) => (r.hash = flipHex(r.hash, 7)), reasons: [ChainBreakCode.HashMismatch] },
  { name: 'prevHash', edit: (r) => (r.prevHash = flipHex(r.prevHash, 63)), reasons: [ChainBreakCode.PrevHashMismatch] },
  { name: 'seq up', edit: (r) => (r.seq += 1), reasons: [ChainBreakCode.SeqGap] },
  { name: 'seq down', edit: (r) => (r.seq -= 1), reasons: [ChainBreakCode.SeqNotIncreasing, ChainBreakCode.Malformed] },
  { name: 'time garbage', edit: (r) => (r.time = 'yesterday'), reasons: [ChainBreakCode.Malformed] },
  { name: 'extra field', edit: (r) => Object.assign(r, { comment: 'hidden' }), reasons: [ChainBreakCode.Malformed] },
];

describe('verifyChain', () => {
  it('accepts a valid chain and reports its head', () => {
    expect(verifyChain(CHAIN)).toEqual({ ok: true, count: 9, headSeq: 9, headHash: CHAIN[8]!.hash });
    expect(verifyChain(CHAIN, { expectedHead: headOf(CHAIN) }).ok).toBe(true);
  });

  it('accepts an empty chain as genesis', () => {
    expect(verifyChain([])).toEqual({ ok: true, count: 0, headSeq: 0, headHash: GENESIS_PREV_HASH });
  });

  it('rejects a first record that does not start at genesis', () => {
    expectBroken(verifyChain(CHAIN.slice(3)), 1, [ChainBreakCode.SeqGap]);
  });

  it('verifies a segment after a trusted anchor', () => {
    const segment = CHAIN.slice(4);
    const after = { seq: CHAIN[3]!.seq, hash: CHAIN[3]!.hash };
    expect(verifyChain(segment, { after })).toEqual({ ok: true, count: 5, headSeq: 9, headHash: CHAIN[8]!.hash });
    expectBroken(verifyChain(segment, { after: { seq: 4, hash: flipHex(after.hash) } }), 5, [
      ChainBreakCode.PrevHashMismatch,
    ]);
    expectBroken(verifyChain(segment, { after: { seq: 3, hash: after.hash } }), 4, [ChainBreakCode.SeqGap]);
  });

  it('refuses a malformed anchor', () => {
    expect(() => new ChainVerifier({ after: { seq: -1, hash: GENESIS_PREV_HASH } })).toThrow(RangeError);
    expect(() => new ChainVerifier({ after: { seq: 0, hash: 'abc' } })).toThrow(RangeError);
  });

  it('needs a trusted head to notice records cut off the end', () => {
    const truncated = CHAIN.slice(0, 7);
    expect(verifyChain(truncated).ok).toBe(true);
    const result = verifyChain(truncated, { expectedHead: headOf(CHAIN) });
    expectBroken(result, 8, [ChainBreakCode.Truncated]);
  });

  it('reports records beyond the trusted head', () => {
    expectBroken(verifyChain(CHAIN, { expectedHead: headOf(CHAIN.slice(0, 5)) }), 6, [ChainBreakCode.BeyondHead]);
  });

  it('names non-object input as MALFORMED at the expected seq', () => {
    const result = verifyChain([CHAIN[0], 'not a record', CHAIN[2]]);
    expectBroken(result, 2, [ChainBreakCode.Malformed]);
    if (!result.ok) expect(result.index).toBe(1);
  });
});

describe('ChainVerifier (streaming)', () => {
  it('accepts records one by one and keeps the first break', () => {
    const verifier = new ChainVerifier();
    for (const r of CHAIN.slice(0, 4)) expect(verifier.push(r)).toBeNull();
    expect(verifier.count).toBe(4);
    expect(verifier.head).toEqual({ seq: 4, hash: CHAIN[3]!.hash });
    const forged = { ...clone(CHAIN[4]), action: 'forged' };
    const first = verifier.push(forged);
    expect(first?.reason).toBe(ChainBreakCode.HashMismatch);
    expect(first?.brokenAt).toBe(5);
    // Later records, even valid ones, do not change the verdict.
    expect(verifier.push(CHAIN[5])).toBe(first);
    expect(verifier.finish()).toBe(first);
  });

  it('verifies a chain fed one record at a time as it is appended', () => {
    const verifier = new ChainVerifier();
    let prev: AuditRecord | null = null;
    for (let i = 0; i < 500; i++) {
      prev = appendRecord(prev, recordInput(i));
      expect(verifier.push(prev)).toBeNull();
    }
    expect(verifier.finish()).toMatchObject({ ok: true, count: 500, headSeq: 500 });
  });
});

describe('tamper detection (property)', () => {
  const position = (n: number) => fc.integer({ min: 0, max: n - 1 });
  const sizes = fc.integer({ min: 1, max: 9 });

  it('detects an edit of any field at the edited record', () => {
    fc.assert(
      fc.property(
        sizes.chain((n) => fc.tuple(fc.constant(n), position(n), fc.constantFrom(...FIELD_EDITS))),
        ([n, p, mutation]) => {
          const records = clone(CHAIN.slice(0, n));
          mutation.edit(records[p]!);
          expectBroken(verifyChain(records, { expectedHead: headOf(CHAIN.slice(0, n)) }), p + 1, mutation.reasons);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('detects an edit whose hash was recomputed at the next link (or at the trusted head)', () => {
    fc.assert(
      fc.property(
        sizes.chain((n) => fc.tuple(fc.constant(n), position(n))),
        ([n, p]) => {
          const records = clone(CHAIN.slice(0, n));
          records[p]!.details = { ...records[p]!.details, rewritten: true };
          records[p]!.hash = computeRecordHash(records[p]!);
          const result = verifyChain(records, { expectedHead: headOf(CHAIN.slice(0, n)) });
          if (p < n - 1) expectBroken(result, p + 2, [ChainBreakCode.PrevHashMismatch]);
          else expectBroken(result, n, [ChainBreakCode.HeadMismatch]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('detects a deleted record at its seq', () => {
    fc.assert(
      fc.property(
        sizes.chain((n) => fc.tuple(fc.constant(n), position(n))),
        ([n, p]) => {
          const records = CHAIN.slice(0, n).filter((_r, i) => i !== p);
          const result = verifyChain(records, { expectedHead: headOf(CHAIN.slice(0, n)) });
          expectBroken(result, p + 1, p < n - 1 ? [ChainBreakCode.SeqGap] : [ChainBreakCode.Truncated]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('detects two swapped records at the earlier position', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 2, max: 9 })
          .chain((n) => fc.tuple(fc.constant(n), fc.uniqueArray(position(n), { minLength: 2, maxLength: 2 }))),
        ([n, [a, b]]) => {
          const records = CHAIN.slice(0, n);
          [records[a!], records[b!]] = [records[b!]!, records[a!]!];
          expectBroken(verifyChain(records, { expectedHead: headOf(CHAIN.slice(0, n)) }), Math.min(a!, b!) + 1, [
            ChainBreakCode.SeqGap,
          ]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('detects a duplicated record right after the original', () => {
    fc.assert(
      fc.property(
        sizes.chain((n) => fc.tuple(fc.constant(n), position(n))),
        ([n, p]) => {
          const records = CHAIN.slice(0, n);
          records.splice(p + 1, 0, clone(records[p]!));
          expectBroken(verifyChain(records, { expectedHead: headOf(CHAIN.slice(0, n)) }), p + 2, [
            ChainBreakCode.SeqNotIncreasing,
          ]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('detects a replayed record inserted anywhere', () => {
    fc.assert(
      fc.property(
        sizes.chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n }), position(n))),
        ([n, at, from]) => {
          const records = CHAIN.slice(0, n);
          records.splice(at, 0, clone(CHAIN[from]!));
          // The replayed copy breaks the chain where it lands, unless it is the record that belongs there: then the
          // original, now one position later, is the duplicate.
          const expected = from === at ? at + 2 : at + 1;
          const reasons = from > at ? [ChainBreakCode.SeqGap] : [ChainBreakCode.SeqNotIncreasing];
          expectBroken(verifyChain(records, { expectedHead: headOf(CHAIN.slice(0, n)) }), expected, reasons);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('detects a well-forged record inserted anywhere', () => {
    fc.assert(
      fc.property(
        sizes.chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n }))),
        ([n, at]) => {
          const records = CHAIN.slice(0, n);
          // The forger links the new record properly to its predecessor and hashes it correctly.
          const forged = appendRecord(at === 0 ? null : records[at - 1]!, {
            ...recordInput(at),
            action: 'silo.revoked',
          });
          records.splice(at, 0, forged);
          const result = verifyChain(records, { expectedHead: headOf(CHAIN.slice(0, n)) });
          if (at < n) expectBroken(result, at + 2, [ChainBreakCode.SeqNotIncreasing]);
          else expectBroken(result, n + 1, [ChainBreakCode.BeyondHead]);
        },
      ),
      { numRuns: 60 },
    );
  });
});
