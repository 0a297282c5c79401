import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentError, AgentErrorCode } from '../agent.error';
import { ControlVariateStore } from './control-variate.store';

const STUDY = '6f1c3a52-93b4-4d1e-9a57-0c1de2f4a001';
const PLAN = 'a'.repeat(64);
const MODEL_1 = '1'.repeat(64);
const MODEL_2 = '2'.repeat(64);

describe('ControlVariateStore (SCAFFOLD c_i in the state directory)', () => {
  let state: string;

  beforeEach(() => {
    state = mkdtempSync(join(tmpdir(), 'tessera-cv-'));
  });
  afterEach(() => rmSync(state, { recursive: true, force: true }));

  it('starts from zeros, and after a round survives a restart (a new store on the same directory)', () => {
    const first = new ControlVariateStore(state);
    expect(Array.from(first.controlFor(STUDY, PLAN, MODEL_1, 3))).toEqual([0, 0, 0]);
    first.save({
      studyId: STUDY,
      planHash: PLAN,
      baseModelHash: MODEL_1,
      round: 1,
      length: 3,
      before: new Float32Array(3),
      after: Float32Array.of(0.5, -1.25, 2),
    });

    const restarted = new ControlVariateStore(state);
    // The next round (another base model) starts from c_i⁺.
    expect(Array.from(restarted.controlFor(STUDY, PLAN, MODEL_2, 3))).toEqual([0.5, -1.25, 2]);
    // Round 1 redone on its own model (a crash before its update was persisted) starts again from c_i before it.
    expect(Array.from(restarted.controlFor(STUDY, PLAN, MODEL_1, 3))).toEqual([0, 0, 0]);
    // Another plan version starts its control variates again.
    expect(Array.from(restarted.controlFor(STUDY, 'b'.repeat(64), MODEL_2, 3))).toEqual([0, 0, 0]);
  });

  it('writes atomically, private to the agent, leaving no temporary file', () => {
    const store = new ControlVariateStore(state);
    const file = store.save({
      studyId: STUDY,
      planHash: PLAN,
      baseModelHash: MODEL_1,
      round: 1,
      length: 2,
      before: Float32Array.of(1, 2),
      after: Float32Array.of(3, 4),
    });
    expect(readdirSync(store.root)).toEqual([`${STUDY}.tsc`]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const loaded = store.load(STUDY)!;
    expect(loaded.round).toBe(1);
    expect(Array.from(loaded.before)).toEqual([1, 2]);
    expect(Array.from(loaded.after)).toEqual([3, 4]);
  });

  it('refuses a damaged file as STATE_CORRUPT rather than training from garbage', () => {
    const store = new ControlVariateStore(state);
    store.save({
      studyId: STUDY,
      planHash: PLAN,
      baseModelHash: MODEL_1,
      round: 1,
      length: 2,
      before: Float32Array.of(1, 2),
      after: Float32Array.of(3, 4),
    });
    writeFileSync(join(store.root, `${STUDY}.tsc`), Buffer.from('TSC1garbage'));
    try {
      store.controlFor(STUDY, PLAN, MODEL_2, 2);
      expect.unreachable('a damaged file must be refused');
    } catch (err) {
      expect(err).toBeInstanceOf(AgentError);
      expect((err as AgentError).code).toBe(AgentErrorCode.STATE_CORRUPT);
    }
  });
});
