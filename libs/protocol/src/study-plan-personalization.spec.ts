import { describe, expect, it } from 'vitest';
import { fairnessView, type SiloFinalMetrics } from './fairness';
import type { EvaluationMetrics } from './rounds';
import {
  DEFAULT_VALIDATION_FOLDS,
  describeCandidate,
  describePlan,
  localBaselineEpochs,
  personalizationModels,
  planHash,
  releasedWithoutDp,
  SELECTION_CANDIDATES,
  StudyPlan,
  studyPlanProblems,
  validationFoldsOf,
  type PersonalizationPlan,
} from './study-plan';
import { planForTest } from './study-plan.test-util';

const EXACT = { evaluation: { mode: 'exact', rounds: 'final' }, trainingExamples: 'none' } as const;

function personalizing(personalization: PersonalizationPlan, more: Parameters<typeof planForTest>[0] = {}): StudyPlan {
  return { ...planForTest(more), personalization };
}

describe('study plan: personalization', () => {
  it('accepts fine-tuning with or without a learning rate and a local baseline, under dp-sgd and without DP', () => {
    expect(studyPlanProblems(personalizing({ method: 'fine-tune', epochs: 5 }))).toEqual([]);
    expect(
      studyPlanProblems(
        personalizing(
          { method: 'fine-tune', epochs: 1, learningRate: 0.01, localBaseline: true },
          { privacy: { mode: 'none' }, release: EXACT },
        ),
      ),
    ).toEqual([]);
  });

  it('refuses malformed blocks, naming the field', () => {
    const bad = (p: unknown) => studyPlanProblems({ ...planForTest(), personalization: p });
    expect(bad({ method: 'fine-tune', epochs: 0 })).toEqual([
      expect.stringMatching(/^personalization\.epochs: /) as string,
    ]);
    expect(bad({ method: 'ditto', epochs: 2 })[0]).toMatch(/^personalization\.method: /);
    expect(bad({ method: 'fine-tune', epochs: 2, learningRate: -1 })[0]).toMatch(/^personalization\.learningRate: /);
    expect(bad({ method: 'fine-tune', epochs: 2, upload: true })[0]).toMatch(/^personalization: .*upload/);
  });

  it('refuses a plan whose personalization could report nothing, or has no per-record mechanism to charge', () => {
    const none = personalizing(
      { method: 'fine-tune', epochs: 2 },
      { privacy: { mode: 'none' }, release: { evaluation: { mode: 'none' }, trainingExamples: 'none' } },
    );
    expect(studyPlanProblems(none)).toEqual([expect.stringMatching(/^personalization: .*release\.evaluation 'none'/)]);
    const fedavg = personalizing(
      { method: 'fine-tune', epochs: 2 },
      {
        privacy: { mode: 'dp-fedavg', unit: 'silo', targetEpsilon: 1, delta: 1e-5, clipNorm: 1, noiseMultiplier: 2 },
        release: EXACT,
      },
    );
    expect(studyPlanProblems(fedavg)).toEqual([expect.stringMatching(/^personalization: under dp-fedavg/)]);
  });

  it('is covered by the plan hash, and parsing adds no key to a plan without it (its bytes and hash unchanged)', () => {
    const plain = planForTest({ siloIds: ['00000000-0000-4000-8000-000000000001'] });
    expect(StudyPlan.parse(plain)).not.toHaveProperty('personalization');
    const withIt = { ...plain, personalization: { method: 'fine-tune', epochs: 3 } as const };
    const other = { ...plain, personalization: { method: 'fine-tune', epochs: 4 } as const };
    const h = (p: StudyPlan) => planHash('00000000-0000-4000-8000-00000000000a', 1, p);
    expect(new Set([h(plain), h(withIt), h(other)]).size).toBe(3);
  });

  it('is shown to the steward, and its metrics listed among releases without DP when they are exact', () => {
    const plan = personalizing(
      { method: 'fine-tune', epochs: 3, localBaseline: true },
      { privacy: { mode: 'none' }, release: EXACT, rounds: 4 },
    );
    const line = describePlan(plan).find((l) => l.startsWith('personalize:'));
    expect(line).toContain('3 epoch(s) at learning rate 0.05');
    expect(line).toContain(
      `local-only baseline trained on the silo's own data for ${localBaselineEpochs(plan)} epochs`,
    );
    expect(localBaselineEpochs(plan)).toBe(8);
    expect(personalizationModels(plan)).toEqual(['personalized', 'local-baseline']);
    expect(releasedWithoutDp(plan).at(-1)).toMatch(/personalized \(fine-tuned\) model and local-only baseline model/);
    // Noisy (DP) releases of the personal models are inside the guarantee: nothing more is listed.
    const dp = personalizing({ method: 'fine-tune', epochs: 3 });
    expect(releasedWithoutDp(dp)).toEqual(releasedWithoutDp(planForTest()));
    expect(describePlan(dp).find((l) => l.startsWith('personalize:'))).toContain('DP-SGD');
  });
});

describe("study plan: personalization method 'select'", () => {
  const NO_DP = { privacy: { mode: 'none' }, release: EXACT } as const;

  it('is accepted without DP, with or without folds, and refused under dp-sgd', () => {
    expect(studyPlanProblems(personalizing({ method: 'select', epochs: 5 }, NO_DP))).toEqual([]);
    expect(
      studyPlanProblems(personalizing({ method: 'select', epochs: 5, validationFolds: 3, localBaseline: true }, NO_DP)),
    ).toEqual([]);
    expect(studyPlanProblems(personalizing({ method: 'select', epochs: 5 }))).toEqual([
      expect.stringMatching(/^personalization\.method: 'select' .*outside the DP guarantee/) as string,
    ]);
  });

  it('bounds the folds, and refuses them with fine-tuning', () => {
    const bad = (p: unknown) => studyPlanProblems({ ...planForTest(NO_DP), personalization: p });
    expect(bad({ method: 'select', epochs: 2, validationFolds: 1 })[0]).toMatch(/^personalization\.validationFolds: /);
    expect(bad({ method: 'select', epochs: 2, validationFolds: 21 })[0]).toMatch(/^personalization\.validationFolds: /);
    expect(bad({ method: 'select', epochs: 2, validationFolds: 2.5 })[0]).toMatch(
      /^personalization\.validationFolds: /,
    );
    expect(bad({ method: 'fine-tune', epochs: 2, validationFolds: 5 })).toEqual([
      expect.stringMatching(/^personalization\.validationFolds: only method 'select'/) as string,
    ]);
  });

  it('leaves a fine-tuning plan as it was (no key added, the same hash) and is covered by the hash itself', () => {
    const plain = planForTest({ ...NO_DP, siloIds: ['00000000-0000-4000-8000-000000000001'] });
    const tune = { ...plain, personalization: { method: 'fine-tune', epochs: 5 } as const };
    expect(StudyPlan.parse(tune).personalization).toEqual({ method: 'fine-tune', epochs: 5 });
    const h = (p: StudyPlan) => planHash('00000000-0000-4000-8000-00000000000a', 1, p);
    const select = { ...plain, personalization: { method: 'select', epochs: 5 } as const };
    const folds = { ...plain, personalization: { method: 'select', epochs: 5, validationFolds: 5 } as const };
    expect(StudyPlan.parse(select).personalization).not.toHaveProperty('validationFolds');
    // An explicit default is a different plan text, so a different hash: the steward approves what was written.
    expect(new Set([h(tune), h(select), h(folds)]).size).toBe(3);
    expect(validationFoldsOf(select)).toBe(DEFAULT_VALIDATION_FOLDS);
    expect(validationFoldsOf(folds)).toBe(5);
    expect(validationFoldsOf(tune)).toBeNull();
  });

  it('tells the steward the candidates, the folds and that the test split is not used', () => {
    const plan = personalizing(
      { method: 'select', epochs: 3, validationFolds: 4, localBaseline: true },
      {
        ...NO_DP,
        rounds: 4,
      },
    );
    const line = describePlan(plan).find((l) => l.startsWith('personalize:'))!;
    for (const c of SELECTION_CANDIDATES) expect(line).toContain(describeCandidate(c));
    expect(line).toContain('4-fold cross-validation on its own training split');
    expect(line).toContain('the test split is not used');
    expect(line).toContain('local-only: 8 epochs');
    expect(releasedWithoutDp(plan).at(-1)).toMatch(/personalized \(selected\) model and local-only baseline model/);
  });
});

function metrics(accuracy: number, more: Partial<EvaluationMetrics> = {}): EvaluationMetrics {
  return { loss: 0.5, accuracy, auc: 0.8, n: 50, positives: 20, ...more };
}

describe('fairnessView', () => {
  const silos: SiloFinalMetrics[] = [
    { siloId: 'a', siloName: 'A', global: metrics(0.8), personalized: metrics(0.82), localBaseline: metrics(0.7) },
    { siloId: 'b', siloName: 'B', global: metrics(0.6), personalized: metrics(0.75), localBaseline: metrics(0.72) },
    { siloId: 'c', siloName: 'C', global: metrics(0.9), personalized: metrics(0.88), localBaseline: null },
    { siloId: 'd', siloName: 'D', global: null, personalized: null, localBaseline: null },
  ];

  it('names the worst and best silo under the global model, their gap, and each silo’s changes', () => {
    const f = fairnessView(silos);
    expect(f.metric).toBe('accuracy');
    expect(f.noisy).toBe(false);
    expect(f.worst).toEqual({ siloId: 'b', siloName: 'B', value: 0.6 });
    expect(f.best).toEqual({ siloId: 'c', siloName: 'C', value: 0.9 });
    expect(f.gap).toBeCloseTo(0.3, 12);
    const b = f.silos.find((s) => s.siloId === 'b')!;
    expect(b.personalizationGain).toBeCloseTo(0.15, 12);
    expect(b.changeFromBaseline).toBeCloseTo(-0.12, 12);
    expect(b.personalizedChangeFromBaseline).toBeCloseTo(0.03, 12);
    expect(f.silos.find((s) => s.siloId === 'c')!.changeFromBaseline).toBeNull();
    expect(f.silos.find((s) => s.siloId === 'd')).toMatchObject({ global: null, personalizationGain: null });
    expect(f.summary.global).toEqual({ worst: 0.6, mean: expect.closeTo((0.8 + 0.6 + 0.9) / 3, 12) as number });
    expect(f.summary.personalized).toEqual({
      worst: 0.75,
      mean: expect.closeTo((0.82 + 0.75 + 0.88) / 3, 12) as number,
    });
    expect(f.summary.localBaseline?.worst).toBe(0.7);
  });

  it('reads R² for regression, says when a figure is a noisy estimate, and is empty without figures', () => {
    const r = fairnessView([
      {
        siloId: 'a',
        siloName: 'A',
        global: metrics(0, { accuracy: null, task: 'regression', r2: 0.4 }),
        personalized: null,
        localBaseline: null,
      },
      {
        siloId: 'b',
        siloName: 'B',
        global: metrics(0, { accuracy: null, task: 'regression', r2: 0.1 }),
        personalized: null,
        localBaseline: null,
      },
    ]);
    expect(r.metric).toBe('r2');
    expect(r.worst?.siloId).toBe('b');
    expect(r.summary.personalized).toBeNull();
    expect(fairnessView([{ ...silos[0]!, global: metrics(0.7, { noisy: true }) }]).noisy).toBe(true);
    expect(fairnessView([])).toMatchObject({ worst: null, best: null, gap: null });
  });
});
