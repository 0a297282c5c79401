import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AgentErrorCode } from '../agent.error';
import { ApprovalStore, type LocalDecision } from './approval-store';
import { errorWith } from '../testing/matchers.test-util';

const hashA = 'a'.repeat(64);
const hashB = 'b'.repeat(64);

function decision(overrides: Partial<LocalDecision> = {}): LocalDecision {
  return {
    planHash: hashA,
    planVersion: 1,
    decision: 'approve',
    decidedAt: '2025-01-01T00:00:00.000Z',
    decidedBy: 'steward',
    ...overrides,
  };
}

const freshStore = () => new ApprovalStore(mkdtempSync(join(tmpdir(), 'tessera-approvals-')));

describe('ApprovalStore', () => {
  it('records decisions per study and reads them back', () => {
    const store = freshStore();
    const [s1, s2] = [randomUUID(), randomUUID()];
    store.record(s1, decision());
    store.record(s2, decision({ planHash: hashB, decision: 'reject', decidedBy: 'policy' }));
    expect(store.get(s1)).toEqual(decision());
    expect(store.get(s2)?.decision).toBe('reject');
    expect(new ApprovalStore(join(store.file, '..')).all()).toEqual(store.all());
  });

  it('allows training only for the exact hash approved', () => {
    const store = freshStore();
    const id = randomUUID();
    expect(store.refusalFor(id, hashA)).toBe('this silo has not approved the study');
    store.record(id, decision());
    expect(store.refusalFor(id, hashA)).toBeNull();
    expect(store.refusalFor(id, hashB)).toMatch(
      /approval covers plan version 1 \(hash aaaaaaaaaaaa…\), not hash bbbbbbbbbbbb…/,
    );
    store.record(id, decision({ decision: 'reject' }));
    expect(store.refusalFor(id, hashA)).toBe('this silo rejected this plan');
  });

  it('replaces the file by rename (new inode, mode 0600, no temporary left) rather than rewriting it in place', () => {
    const store = freshStore();
    store.record(randomUUID(), decision());
    const before = statSync(store.file).ino;
    store.record(randomUUID(), decision());
    const after = statSync(store.file);
    expect(after.ino).not.toBe(before);
    expect(after.mode & 0o777).toBe(0o600);
    expect(readdirSync(join(store.file, '..'))).toEqual(['approvals.json']);
    const stored = JSON.parse(readFileSync(store.file, 'utf8')) as Record<string, unknown>;
    expect(Object.keys(stored)).toHaveLength(2);
  });

  it('refuses a corrupt or tampered file instead of guessing', () => {
    const store = freshStore();
    writeFileSync(store.file, JSON.stringify({ [randomUUID()]: { ...decision(), planHash: 'not-a-hash' } }));
    expect(() => store.get(randomUUID())).toThrow(errorWith({ code: AgentErrorCode.STATE_CORRUPT }));
    writeFileSync(store.file, '{"half":');
    expect(() => store.all()).toThrow(/approvals\.json is unreadable/);
  });

  it('refuses to record a malformed decision', () => {
    expect(() => freshStore().record(randomUUID(), decision({ planHash: 'short' }))).toThrow();
  });
});
