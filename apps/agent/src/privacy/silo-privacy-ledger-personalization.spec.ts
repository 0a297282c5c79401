import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chargedEpsilon, epsilonAfterRounds, privacyMechanismOf } from '@tessera/dp';
import { epsilonForEvents } from '@tessera/dp/accountant';
import { describe, expect, it } from 'vitest';
import { buildPlan, buildStudy } from '../testing/study.test-util';
import { ChargeRefusedError, SiloPrivacyLedger } from './silo-privacy-ledger';

const plan = {
  ...buildPlan({
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
  }),
  personalization: { method: 'fine-tune', epochs: 3, localBaseline: true } as const,
};
const m = privacyMechanismOf(plan)!;
const study = buildStudy(plan);
const at = (round: number) => ({
  studyId: study.studyId,
  studyName: plan.name,
  round,
  attempt: 1,
  modelHash: 'a'.repeat(64),
});

describe('SiloPrivacyLedger: personalization', () => {
  it('charges the fine-tuning steps with the final evaluation’s three releases, composed with the rounds’', () => {
    const l = new SiloPrivacyLedger(mkdtempSync(join(tmpdir(), 'tessera-ledger-')), undefined);
    l.charge(at(1), m, { trainingRounds: 1, evaluationReleases: 0 });
    l.charge(at(2), m, { trainingRounds: 1, evaluationReleases: 0 });
    const final = l.charge(at(3), m, { trainingRounds: 0, evaluationReleases: 3, personalizations: 1 });
    expect(final.personalizations).toBe(1);
    expect(final.evaluationReleases).toBe(3);
    expect(final.epsilonCumulative).toBeCloseTo(chargedEpsilon(m, 2, 3, 1), 12);
    expect(l.counts(study.studyId)).toEqual({ trainingRounds: 2, evaluationReleases: 3, personalizations: 1 });
    const kinds = l.entries().map((e) => [e.kind, e.steps]);
    expect(kinds).toEqual([
      ['training', m.stepsPerRound],
      ['training', m.stepsPerRound],
      // 3 fine-tuning epochs + the baseline's rounds × local epochs, 10 steps each (q = 0.1).
      ['personalization', (3 + plan.training.rounds * plan.training.localEpochs) * 10],
      ['evaluation', 1],
      ['evaluation', 1],
      ['evaluation', 1],
    ]);
    // The budget's training part composes the personalization's steps with the rounds'.
    const line = l.report().studies[0]!;
    expect(line.trainingEpsilon).toBeCloseTo(epsilonAfterRounds(m, 2, 1), 9);
    expect(line.trainingEpsilon).toBeGreaterThan(epsilonAfterRounds(m, 2, 0));
  });

  it('refuses a second personalization, and one the silo’s cap cannot pay for, charging nothing', () => {
    const l = new SiloPrivacyLedger(mkdtempSync(join(tmpdir(), 'tessera-ledger-')), undefined);
    l.charge(at(3), m, { trainingRounds: 0, evaluationReleases: 3, personalizations: 1 });
    expect(() => l.charge(at(3), m, { trainingRounds: 0, evaluationReleases: 0, personalizations: 1 })).toThrow(
      ChargeRefusedError,
    );
    expect(l.entries()).toHaveLength(4);

    // A cap that the training rounds fit but the personalization's steps do not.
    const rounds = [{ noiseMultiplier: m.noiseMultiplier, samplingRate: m.samplingRate, steps: 2 * m.stepsPerRound }];
    const capEpsilon = epsilonForEvents(rounds, 1e-5).epsilon * 1.0001;
    const capped = new SiloPrivacyLedger(mkdtempSync(join(tmpdir(), 'tessera-ledger-')), {
      epsilon: capEpsilon,
      delta: 1e-5,
    });
    capped.charge(at(1), m, { trainingRounds: 1, evaluationReleases: 0 });
    capped.charge(at(2), m, { trainingRounds: 1, evaluationReleases: 0 });
    const refusal = capped.refusal(study.studyId, m, { trainingRounds: 0, evaluationReleases: 0, personalizations: 1 });
    expect(refusal?.code).toBe('PRIVACY_CAP_REACHED');
    expect(refusal?.message).toMatch(/the personalization and the final evaluation would bring it to/);
    expect(capped.entries()).toHaveLength(2);
  });
});
