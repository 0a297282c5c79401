import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  appendRecord,
  AuditRecordError,
  computeRecordHash,
  describeRecordProblem,
  GENESIS_PREV_HASH,
  isIsoUtcTimestamp,
  type AuditRecord,
} from './audit-record';
import { verifyChain } from './chain-verifier';
import { buildChain, clone } from './audit-fixtures.test-util';

// A three-record chain from literal inputs. Its hashes were computed once with this implementation and are frozen
// here: any change to the canonical form or the hashed fields must fail this test (it is a format change).
function literalChain(): [AuditRecord, AuditRecord, AuditRecord] {
  const r1 = appendRecord(null, {
    time: '2025-01-15T09:00:00.000Z',
    actor: { type: 'user', id: 'u-1', name: 'Alice' },
    action: 'study.created',
    subject: { studyId: 'st-1' },
    details: { title: 'Sepsis' },
  });
  const r2 = appendRecord(r1, {
    time: '2025-01-15T09:05:00.000Z',
    actor: { type: 'silo', id: 'silo-a' },
    action: 'silo.enrolled',
    subject: { studyId: 'st-1', siloId: 'silo-a' },
  });
  const r3 = appendRecord(r2, {
    time: '2025-01-15T10:00:00.000Z',
    actor: { type: 'system', id: 'hub' },
    action: 'round.closed',
    subject: { studyId: 'st-1', roundId: 'r-1' },
    details: { participants: 2, epsilon: 0.5 },
  });
  return [r1, r2, r3];
}

describe('record hashes (known answers)', () => {
  it('reproduces the frozen hashes of the literal chain', () => {
    const [r1, r2, r3] = literalChain();
    expect([r1.seq, r2.seq, r3.seq]).toEqual([1, 2, 3]);
    expect(r1.prevHash).toBe(GENESIS_PREV_HASH);
    expect(r1.hash).toBe('3f0abff9beb110d7b1c3c9c61f20a84e62f487759ee3c392aafbd42b887eda09');
    expect(r2.prevHash).toBe(r1.hash);
    expect(r2.hash).toBe('60b7adbc837789d6fa5c6e359b4c20b94da061bd0fec9815fd242b13586cfeb6');
    expect(r3.prevHash).toBe(r2.hash);
    expect(r3.hash).toBe('e24cf54f458c8f974aec99cb10f5a414eb86c0d2101b16346f857da9e891cdb3');
    expect(r2.subject).toEqual({ studyId: 'st-1', siloId: 'silo-a' });
    expect(r2.details).toEqual({});
  });

  it('agrees with SHA-256 of the hand-written canonical text (independent cross-check)', () => {
    // Written by hand from docs/audit-format.md: members sorted, no whitespace, hash excluded.
    const canonical =
      '{"action":"study.created","actor":{"id":"u-1","name":"Alice","type":"user"},"details":{"title":"Sepsis"},' +
      `"prevHash":"${'0'.repeat(64)}","seq":1,"subject":{"studyId":"st-1"},"time":"2025-01-15T09:00:00.000Z"}`;
    const direct = createHash('sha256').update(canonical, 'utf8').digest('hex');
    expect(direct).toBe('3f0abff9beb110d7b1c3c9c61f20a84e62f487759ee3c392aafbd42b887eda09');
    expect(computeRecordHash(literalChain()[0])).toBe(direct);
  });

  it('does not depend on member order or on the stored hash', () => {
    const [r1] = literalChain();
    const reordered = JSON.parse(
      JSON.stringify({
        hash: 'x',
        details: r1.details,
        time: r1.time,
        seq: 1,
        actor: r1.actor,
        subject: r1.subject,
        action: r1.action,
        prevHash: r1.prevHash,
      }),
    ) as AuditRecord;
    expect(computeRecordHash(reordered)).toBe(r1.hash);
  });

  it('commits to seq and prevHash', () => {
    const [r1] = literalChain();
    expect(computeRecordHash({ ...r1, seq: 2 })).not.toBe(r1.hash);
    expect(computeRecordHash({ ...r1, prevHash: '1'.repeat(64) })).not.toBe(r1.hash);
  });
});

describe('appendRecord', () => {
  it('continues from an anchor given as { seq, hash }', () => {
    const chain = buildChain(3);
    const next = appendRecord(
      { seq: chain[2]!.seq, hash: chain[2]!.hash },
      { time: '2025-03-02T00:00:00Z', actor: { type: 'system', id: 'hub' }, action: 'checkpoint.signed' },
    );
    expect(next.seq).toBe(4);
    expect(verifyChain([...chain, next])).toEqual({ ok: true, count: 4, headSeq: 4, headHash: next.hash });
  });

  it('drops undefined optional ids instead of failing', () => {
    const r = appendRecord(null, {
      time: '2025-03-02T00:00:00Z',
      actor: { type: 'user', id: 'u', name: undefined },
      action: 'auditor.exported',
      subject: { studyId: 'st', roundId: undefined },
    });
    expect(r.actor).toEqual({ type: 'user', id: 'u' });
    expect(r.subject).toEqual({ studyId: 'st' });
  });

  it.each([
    ['a local time', { time: '2025-03-02T10:00:00+01:00' }, /time must be an ISO-8601 UTC/],
    ['an impossible date', { time: '2025-02-30T10:00:00Z' }, /time must be/],
    ['an unknown actor type', { actor: { type: 'robot', id: 'r' } }, /actor.type must be one of/],
    ['an empty actor id', { actor: { type: 'user', id: '' } }, /actor.id/],
    ['an action with spaces', { action: 'silo enrolled' }, /action must be/],
    ['a numeric subject id', { subject: { roundId: 3 } }, /subject.roundId must be a string/],
    ['details that are an array', { details: [1] }, /details must be a JSON object/],
    ['details holding NaN', { details: { x: Number.NaN } }, /details: cannot canonicalize \$\.x/],
    ['details holding undefined', { details: { x: undefined } }, /undefined/],
  ])('rejects %s', (_label, patch, message) => {
    const input = { time: '2025-03-02T00:00:00Z', actor: { type: 'system', id: 'hub' }, action: 'x.y', ...patch };
    expect(() => appendRecord(null, input as never)).toThrow(AuditRecordError);
    expect(() => appendRecord(null, input as never)).toThrow(message);
  });

  it('rejects a malformed previous anchor', () => {
    expect(() =>
      appendRecord(
        { seq: 1.5, hash: GENESIS_PREV_HASH },
        { time: '2025-03-02T00:00:00Z', actor: { type: 'system', id: 'hub' }, action: 'x' },
      ),
    ).toThrow(AuditRecordError);
  });
});

describe('describeRecordProblem', () => {
  it('accepts every record of a built chain', () => {
    for (const r of buildChain(12)) expect(describeRecordProblem(r)).toBeNull();
  });

  it.each([
    ['an unhashed extra field', (r: Record<string, unknown>) => (r.note = 'x'), /unknown field "note"/],
    ['a missing field', (r: Record<string, unknown>) => delete r.details, /missing field "details"/],
    ['seq 0', (r: Record<string, unknown>) => (r.seq = 0), /seq must be an integer >= 1/],
    [
      'an upper-case hash',
      (r: Record<string, unknown>) => (r.hash = String(r.hash).toUpperCase()),
      /hash must be 64 lowercase hex/,
    ],
    [
      'an extra actor field',
      (r: Record<string, unknown>) => ((r.actor as Record<string, unknown>).role = 'admin'),
      /actor has unknown field/,
    ],
  ])('reports %s', (_label, mutate, message) => {
    const r = clone(buildChain(1)[0]) as unknown as Record<string, unknown>;
    mutate(r);
    expect(describeRecordProblem(r)).toMatch(message);
  });
});

describe('isIsoUtcTimestamp', () => {
  it.each(['2025-01-01T00:00:00Z', '2025-01-01T00:00:00.123Z', '2024-02-29T23:59:59.123456789Z'])('accepts %s', (t) => {
    expect(isIsoUtcTimestamp(t)).toBe(true);
  });
  it.each([
    '2025-01-01',
    '2025-01-01T00:00:00',
    '2025-01-01T00:00:00+00:00',
    '2025-13-01T00:00:00Z',
    '2025-02-29T00:00:00Z',
    '2025-01-01T24:00:00Z',
    ' 2025-01-01T00:00:00Z',
  ])('rejects %s', (t) => {
    expect(isIsoUtcTimestamp(t)).toBe(false);
  });
});

describe('chain hashes pinned before canonical JSON and SHA-256 moved to @tessera/canonical', () => {
  // Computed with @tessera/audit's own canonicalJson and node:crypto before the move: hub and agent chains on disk
  // carry these hashes, so the move must not change a single one.
  it('keeps the hashes of the synthetic 64-record chain', () => {
    const chain = buildChain(64);
    expect(chain.slice(0, 3).map((r) => r.hash)).toEqual([
      '0b7ed8c1b6a7750398c4e3ba1840f8632cd506f3582f5665717b98a7857d5628',
      'b3353b78bd4e98bbd971bc5eff8b3745742f30ea03f0b2ade30d1f9b4674be79',
      '6de9e0ead9d4c2dc4103d5450a44477e9e5ca3e380770f7dec71734a62fc66a2',
    ]);
    expect(chain[63]!.hash).toBe('776d8957d5c81834a1fe3ac736b7b210f508ca6672b32a3e09ddcb629e861d61');
  });
});
