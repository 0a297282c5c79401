import { appendFileSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentAuditAction, canonicalJson, parseLines, sha256Hex, verifyChain } from '@tessera/audit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AgentError, AgentErrorCode } from '../agent.error';
import { AgentAuditLog, AUDIT_LOG_FILE } from './agent-audit-log';

const ACTOR = { type: 'silo' as const, id: '0b8a1f8e-8f4e-4d8b-9a51-6f0f3d2d7c11', name: 'Hôpital Sainte-Élise' };

function freshRoot(): string {
  return mkdtempSync(join(tmpdir(), 'tessera-agent-audit-'));
}

function fill(log: AgentAuditLog, n: number): void {
  for (let i = 0; i < n; i++) {
    log.append(AgentAuditAction.TaskReceived, { studyId: 'st-1' }, { round: i + 1, attempt: 1, kind: 'train' });
  }
}

function fileOf(root: string): string {
  return join(root, AUDIT_LOG_FILE);
}

describe('AgentAuditLog', () => {
  it('starts a chain, appends canonical JSON lines, and verifies on every open', () => {
    const root = freshRoot();
    const log = AgentAuditLog.open(root, ACTOR);
    fill(log, 3);
    const text = readFileSync(fileOf(root), 'utf8');
    const { records, problems } = parseLines(text);
    expect(problems).toEqual([]);
    expect(records.map((r) => r.action)).toEqual([
      AgentAuditAction.LogStarted,
      AgentAuditAction.TaskReceived,
      AgentAuditAction.TaskReceived,
      AgentAuditAction.TaskReceived,
    ]);
    expect(records[0]!.details).toEqual({ siloId: ACTOR.id, siloName: ACTOR.name });
    expect(text).toBe(records.map((r) => canonicalJson(r) + '\n').join(''));
    expect(verifyChain(records)).toMatchObject({ ok: true, headSeq: 4 });
    // Reopening neither restarts nor changes the chain.
    const again = AgentAuditLog.open(root, ACTOR);
    expect(again.check()).toMatchObject({ ok: true, records: 4, headSeq: 4, headHash: records[3]!.hash });
    expect(readFileSync(fileOf(root), 'utf8')).toBe(text);
  });

  it('stops the agent with a clear message when a record was edited', () => {
    const root = freshRoot();
    fill(AgentAuditLog.open(root, ACTOR), 3);
    const lines = readFileSync(fileOf(root), 'utf8').split('\n');
    lines[2] = lines[2]!.replace('"round":2', '"round":9');
    writeFileSync(fileOf(root), lines.join('\n'));
    const opening = () => AgentAuditLog.open(root, ACTOR);
    expect(opening).toThrow(AgentError);
    expect(opening).toThrow(/audit log .* is broken at seq 3 \(HASH_MISMATCH\).*The agent stops/);
    try {
      opening();
    } catch (err) {
      expect((err as AgentError).code).toBe(AgentErrorCode.STATE_CORRUPT);
    }
    expect(AgentAuditLog.inspect(root, ACTOR)).toMatchObject({ ok: false, problem: { seq: 3, code: 'HASH_MISMATCH' } });
  });

  it('names a line that is not a record', () => {
    const root = freshRoot();
    fill(AgentAuditLog.open(root, ACTOR), 1);
    appendFileSync(fileOf(root), '{"not":"a record"}\n');
    expect(AgentAuditLog.inspect(root, ACTOR)).toMatchObject({ ok: false, problem: { line: 3, code: 'NOT_A_RECORD' } });
    expect(() => AgentAuditLog.open(root, ACTOR)).toThrow(/broken at line 3/);
  });

  it('cuts off a torn last line at the next start and records the cut, whatever byte the crash stopped at', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), (cut) => {
        const root = freshRoot();
        const log = AgentAuditLog.open(root, ACTOR);
        fill(log, 2);
        const before = readFileSync(fileOf(root));
        log.append(AgentAuditAction.ModelDownloaded, {}, { modelHash: 'a'.repeat(64), note: 'é€' });
        const full = readFileSync(fileOf(root));
        const lastLength = full.length - before.length;
        const keep = before.length + Math.min(cut, lastLength - 1); // cut inside the last line, before its newline
        truncateSync(fileOf(root), keep);
        const torn = full.subarray(before.length, keep);

        expect(AgentAuditLog.inspect(root, ACTOR)).toMatchObject({ ok: true, tornLastLine: true, records: 3 });
        const reopened = AgentAuditLog.open(root, ACTOR);
        const check = reopened.check();
        expect(check).toMatchObject({ ok: true, tornLastLine: false, records: 4 });
        const last = reopened.records().at(-1)!;
        expect(last.action).toBe(AgentAuditAction.TornLineDiscarded);
        expect(last.details).toEqual({ bytes: torn.length, sha256: sha256Hex(torn) });
      }),
      { numRuns: 15 },
    );
  });

  it('keeps one chain when two processes (two log instances) append in turn', () => {
    const root = freshRoot();
    const daemon = AgentAuditLog.open(root, ACTOR);
    const steward = AgentAuditLog.open(root, ACTOR);
    for (let i = 0; i < 5; i++) {
      daemon.append(AgentAuditAction.TaskReceived, { studyId: 'st-1' }, { round: i + 1 });
      steward.append(AgentAuditAction.PlanApproved, { studyId: 'st-2' }, { planHash: 'b'.repeat(64), n: i });
    }
    expect(daemon.check()).toMatchObject({ ok: true, records: 11, headSeq: 11 });
  });
});
