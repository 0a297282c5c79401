import { describe, expect, it } from 'vitest';
import { appendRecord, type AuditRecord, type AuditRecordInput } from './audit-record';
import type { JsonObject } from '@tessera/canonical';
import { ed25519KeyFromSeed, RFC8032_TEST1 } from './audit-fixtures.test-util';
import { buildBundle, BundleProblemCode, verifyBundle } from './report-bundle';
import { checkRecordedState, RECORDED_STATE_FORMAT, recordedStateProblem, type RecordedState } from './recorded-state';
import { runVerifyCli } from './verify-command';

const HUB = ed25519KeyFromSeed(RFC8032_TEST1.secret);
const STUDY = '6f1c1a52-7c1e-4d0c-9a55-0f5b8e0d2a11';
const SILO_A = '0b8e9d0e-1f43-4b5e-8c3c-6f1c3b1f2a01';
const SILO_B = '0b8e9d0e-1f43-4b5e-8c3c-6f1c3b1f2a02';
const HASH_A = 'a'.repeat(64);
const HASH_B = 'b'.repeat(64);

function input(i: number, action: string, siloId: string | undefined, details: JsonObject): AuditRecordInput {
  return {
    time: `2025-03-01T10:00:${String(i).padStart(2, '0')}.000Z`,
    actor: siloId ? { type: 'silo', id: siloId } : { type: 'system', id: 'hub' },
    action,
    subject: { studyId: STUDY, ...(siloId ? { siloId } : {}) },
    details,
  };
}

/** The records a hub writes for a study's first round: started, charged, two accepted updates, closed, opened. */
function studyRecords(skip: string[] = [], extra: AuditRecordInput[] = []): AuditRecord[] {
  const inputs: AuditRecordInput[] = [
    input(1, 'study.started', undefined, {}),
    input(2, 'privacy.charged', SILO_A, { round: 1, attempt: 1, kind: 'train' }),
    input(3, 'privacy.charged', SILO_B, { round: 1, attempt: 1, kind: 'train' }),
    input(4, 'round.update.accepted', SILO_A, { round: 1, attempt: 1, updateSha256: HASH_A }),
    input(5, 'round.update.accepted', SILO_B, { round: 1, attempt: 1, updateSha256: HASH_B }),
    input(6, 'round.closed', undefined, { round: 1, attempt: 1 }),
    input(7, 'round.opened', undefined, { round: 2, kind: 'train' }),
    ...extra,
  ].filter((r) => !skip.includes(`${r.action}:${String(r.subject?.siloId ?? '')}`));
  const out: AuditRecord[] = [];
  for (const r of inputs) out.push(appendRecord(out.at(-1) ?? null, r));
  return out;
}

const STATE: RecordedState = {
  format: RECORDED_STATE_FORMAT,
  items: [
    { kind: 'privacy.charged', studyId: STUDY, siloId: SILO_A, round: 1, attempt: 1, task: 'train' },
    { kind: 'privacy.charged', studyId: STUDY, siloId: SILO_B, round: 1, attempt: 1, task: 'train' },
    { kind: 'update.accepted', studyId: STUDY, siloId: SILO_A, round: 1, attempt: 1, updateSha256: HASH_A },
    { kind: 'update.accepted', studyId: STUDY, siloId: SILO_B, round: 1, attempt: 1, updateSha256: HASH_B },
    { kind: 'round.closed', studyId: STUDY, round: 1, attempt: 1 },
    { kind: 'round.opened', studyId: STUDY, round: 2, attempt: 1 },
  ],
};

describe('recorded state: every state change has its audit record', () => {
  it('accepts a log that records every state item', () => {
    expect(checkRecordedState(STATE, studyRecords())).toEqual([]);
  });

  it('names an accepted update whose record is missing (the crash window between commit and record)', () => {
    const problems = checkRecordedState(STATE, studyRecords([`round.update.accepted:${SILO_B}`]));
    expect(problems).toHaveLength(1);
    expect(problems[0]!.code).toBe('STATE_UNRECORDED');
    expect(problems[0]!.message).toContain(`silo ${SILO_B} round 1 attempt 1`);
    expect(problems[0]!.message).toContain(HASH_B);
  });

  it('names a missing privacy charge, round close and round opening', () => {
    const records = studyRecords([`privacy.charged:${SILO_A}`, 'round.closed:', 'round.opened:']);
    const messages = checkRecordedState(STATE, records).map((p) => p.message);
    expect(messages).toHaveLength(3);
    expect(messages.some((m) => m.startsWith(`privacy.charged of study ${STUDY} silo ${SILO_A}`))).toBe(true);
    expect(messages.some((m) => m.startsWith('round.closed'))).toBe(true);
    expect(messages.some((m) => m.startsWith('round.opened'))).toBe(true);
  });

  it('does not take a record of another update, silo or attempt for the one stated', () => {
    const other: RecordedState = {
      format: RECORDED_STATE_FORMAT,
      items: [{ kind: 'update.accepted', studyId: STUDY, siloId: SILO_A, round: 1, attempt: 2, updateSha256: HASH_A }],
    };
    expect(checkRecordedState(other, studyRecords())[0]!.code).toBe('STATE_UNRECORDED');
    const wrongHash: RecordedState = {
      format: RECORDED_STATE_FORMAT,
      items: [{ kind: 'update.accepted', studyId: STUDY, siloId: SILO_A, round: 1, attempt: 1, updateSha256: HASH_B }],
    };
    expect(checkRecordedState(wrongHash, studyRecords())[0]!.code).toBe('STATE_UNRECORDED');
  });

  it('flags an accepted update recorded twice (counted twice in a reader of the log)', () => {
    const twice = studyRecords(
      [],
      [input(8, 'round.update.accepted', SILO_A, { round: 1, attempt: 1, updateSha256: HASH_A })],
    );
    const problems = checkRecordedState(STATE, twice);
    expect(problems).toEqual([expect.objectContaining({ code: 'STATE_RECORDED_TWICE', seq: 8 })]);
  });

  it('describes a malformed statement', () => {
    expect(recordedStateProblem({ format: 'x', items: [] })).toMatch(/format/);
    expect(
      recordedStateProblem({ format: RECORDED_STATE_FORMAT, items: [{ kind: 'update.accepted', studyId: STUDY }] }),
    ).toMatch(/round and attempt/);
    expect(recordedStateProblem({ format: RECORDED_STATE_FORMAT, items: [{ kind: 'nope', studyId: STUDY }] })).toMatch(
      /unknown kind/,
    );
    expect(recordedStateProblem(STATE)).toBeNull();
  });
});

describe('a bundle that states the hub state', () => {
  const bundleOf = (records: AuditRecord[]) =>
    buildBundle({
      records,
      study: { id: STUDY, recordedState: STATE as unknown as Record<string, never> },
      signingKey: HUB,
      generatedAt: '2025-03-02T00:00:00.000Z',
    });

  it('verifies when every change is recorded, and says how many were checked', () => {
    const result = verifyBundle(bundleOf(studyRecords()));
    expect(result.ok).toBe(true);
    expect(result.summary?.stateItems).toBe(STATE.items.length);
  });

  it('is signed but fails verification, offline too, naming the update without its record', () => {
    const bundle = bundleOf(studyRecords([`round.update.accepted:${SILO_B}`]));
    const result = verifyBundle(bundle);
    expect(result.ok).toBe(false);
    expect(result.problems.map((p) => p.code)).toEqual([BundleProblemCode.StateUnrecorded]);
    const cli = runVerifyCli(['report.json'], { readFile: () => JSON.stringify(bundle) });
    expect(cli.exitCode).toBe(1);
    expect(cli.stdout).toContain(`STATE_UNRECORDED: update.accepted of study ${STUDY} silo ${SILO_B}`);
  });

  it('is refused at signing when the statement is malformed (an exporter bug, never shipped)', () => {
    expect(() =>
      buildBundle({
        records: studyRecords(),
        study: { id: STUDY, recordedState: { format: RECORDED_STATE_FORMAT, items: 'none' } },
        signingKey: HUB,
      }),
    ).toThrow(/RECORDED_STATE_MALFORMED: recordedState.items must be an array/);
  });
});
