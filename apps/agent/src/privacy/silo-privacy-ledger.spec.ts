import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { privacyMechanismOf, privacySpendOf } from '@tessera/dp';
import { describe, expect, it } from 'vitest';
import { AgentErrorCode } from '../agent.error';
import { buildPlan, buildStudy } from '../testing/study.test-util';
import { errorWith, textContaining } from '../testing/matchers.test-util';
import { ChargeRefusedError, formatBudget, SiloPrivacyLedger } from './silo-privacy-ledger';

const plan = buildPlan({
  privacy: {
    mode: 'dp-sgd',
    unit: 'record',
    targetEpsilon: 2,
    delta: 1e-5,
    clipNorm: 1,
    noiseMultiplier: 'derive',
    samplingRate: 0.1,
  },
  training: { rounds: 2 },
  release: { evaluation: { mode: 'noisy', rounds: 'final', scoreBins: 4 }, trainingExamples: 'none' },
});
const m = privacyMechanismOf(plan)!;
const study = buildStudy(plan);
const at = (round: number, modelHash = 'a'.repeat(64)) => ({
  studyId: study.studyId,
  studyName: plan.name,
  round,
  attempt: 1,
  modelHash,
});

function ledger(cap?: { epsilon: number; delta: number }) {
  const root = mkdtempSync(join(tmpdir(), 'tessera-ledger-'));
  return { root, ledger: new SiloPrivacyLedger(root, cap) };
}

describe('SiloPrivacyLedger', () => {
  it('charges training rounds and evaluation releases with the protocol’s spend, flushed to disk', () => {
    const { root, ledger: l } = ledger();
    expect(l.charge(at(1), m, { trainingRounds: 1, evaluationReleases: 0 })).toEqual(privacySpendOf(m, 1, 0));
    expect(l.charge(at(2), m, { trainingRounds: 1, evaluationReleases: 0 })).toEqual(privacySpendOf(m, 2, 0));
    const final = l.charge(at(3), m, { trainingRounds: 0, evaluationReleases: 1 });
    expect(final).toEqual(privacySpendOf(m, 2, 1, { trainingRounds: 0, evaluationReleases: 1 }));
    // Re-read from the file by a new instance (the agent after a restart).
    const again = new SiloPrivacyLedger(root, undefined);
    expect(again.counts(study.studyId)).toEqual({ trainingRounds: 2, evaluationReleases: 1 });
    const line = again.report().studies[0]!;
    expect(line).toMatchObject({ rounds: 2, evaluationReleases: 1, evaluationNoiseStddev: m.evaluation!.noiseStddev });
    expect(line.epsilon).toBe(final.epsilonCumulative);
    // Parallel composition: the charged ε is the larger part, not the sum.
    expect(line.epsilon).toBeCloseTo(Math.max(line.trainingEpsilon, line.evaluationEpsilon), 9);
    expect(formatBudget(again.report())).toMatch(/training: {3}2 round\(s\)[\s\S]*evaluation: 1 noisy release/);
  });

  it('refuses what the approved plan does not allow, and charge() refuses it too without writing', () => {
    const { ledger: l } = ledger();
    l.charge(at(1), m, { trainingRounds: 1, evaluationReleases: 0 });
    l.charge(at(2), m, { trainingRounds: 1, evaluationReleases: 0 });
    const third = { trainingRounds: 1, evaluationReleases: 0 } as const;
    expect(l.refusal(study.studyId, m, third)).toEqual({
      code: 'PLAN_LIMIT_REACHED',
      message: textContaining('the approved plan has 2 training rounds'),
    });
    const before = l.entries();
    expect(() => l.charge(at(3), m, third)).toThrow(ChargeRefusedError);
    expect(l.entries()).toEqual(before);
    l.charge(at(3), m, { trainingRounds: 0, evaluationReleases: 1 });
    expect(l.refusal(study.studyId, m, { trainingRounds: 0, evaluationReleases: 1 })?.message).toContain(
      'allows 1 noisy evaluation releases',
    );
  });

  it("composes training and evaluation events against the silo's cap by a plain RDP sum", () => {
    const generous = ledger({ epsilon: 100, delta: 1e-5 }).ledger;
    generous.charge(at(1), m, { trainingRounds: 1, evaluationReleases: 0 });
    generous.charge(at(2), m, { trainingRounds: 1, evaluationReleases: 0 });
    generous.charge(at(3), m, { trainingRounds: 0, evaluationReleases: 1 });
    const total = generous.report().total!.epsilon;
    // The sum counts the evaluation although the study's own charge (max of the parts) does not add it.
    expect(total).toBeGreaterThan(generous.report().studies[0]!.epsilon);

    const tight = ledger({ epsilon: total * 0.99, delta: 1e-5 }).ledger;
    tight.charge(at(1), m, { trainingRounds: 1, evaluationReleases: 0 });
    tight.charge(at(2), m, { trainingRounds: 1, evaluationReleases: 0 });
    expect(tight.refusal(study.studyId, m, { trainingRounds: 0, evaluationReleases: 1 })).toMatchObject({
      code: 'PRIVACY_CAP_REACHED',
      message: textContaining('one more evaluation release'),
    });
  });

  it('reads a format-1 ledger as training rounds and refuses an unreadable one clearly', () => {
    const { root, ledger: l } = ledger();
    const v1 = { ...privacySpendOf(m, 1, 0), studyId: study.studyId, studyName: plan.name, round: 1, attempt: 1 };
    const { trainingRounds: _t, evaluationReleases: _e, ...entry } = v1;
    writeFileSync(
      join(root, 'privacy-ledger.json'),
      JSON.stringify({
        format: 'tessera.silo-privacy-ledger/1',
        entries: [
          { ...entry, at: '2025-01-01T00:00:00.000Z' },
          { ...entry, round: 2, at: '2025-01-02T00:00:00.000Z' },
        ],
      }),
    );
    expect(l.counts(study.studyId)).toEqual({ trainingRounds: 2, evaluationReleases: 0 });
    expect(l.entries().map((e) => [e.kind, e.trainingRounds, e.modelHash])).toEqual([
      ['training', 1, null],
      ['training', 2, null],
    ]);
    // The next charge writes format 2, keeping the old entries.
    l.charge(at(3), m, { trainingRounds: 0, evaluationReleases: 1 });
    expect(JSON.parse(readFileSync(join(root, 'privacy-ledger.json'), 'utf8'))).toMatchObject({
      format: 'tessera.silo-privacy-ledger/2',
    });
    expect(l.entries()).toHaveLength(3);

    writeFileSync(join(root, 'privacy-ledger.json'), JSON.stringify({ format: 'tessera.silo-privacy-ledger/9' }));
    expect(() => l.entries()).toThrow(errorWith({ code: AgentErrorCode.STATE_CORRUPT }));
    expect(() => l.counts(study.studyId)).toThrow(/will not guess what was spent/);
  });
});
