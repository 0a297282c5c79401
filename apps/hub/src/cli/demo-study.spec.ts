import { randomUUID } from 'node:crypto';
import { privacyMechanismOf } from '@tessera/dp';
import { releasedWithoutDp, studyPlanProblems } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { demoPlan, type DemoSilo } from './demo-study';

const silos: DemoSilo[] = ['cleveland', 'hungarian', 'switzerland', 'va'].map((key) => ({
  key,
  name: key,
  file: `processed.${key}.data`,
  id: randomUUID(),
  env: { TESSERA_STATE_DIR: `/tmp/${key}`, TESSERA_DATA_FILE: `${key}.data` },
}));

describe('demoPlan', () => {
  it('distributed-dp: silo-level DP with noise added by each hospital under secure aggregation, a valid plan', () => {
    const plan = demoPlan(silos, 'distributed-dp', '1');
    expect(studyPlanProblems(plan)).toEqual([]);
    expect(plan.privacy).toMatchObject({ mode: 'dp-fedavg', noise: 'distributed', targetEpsilon: 1 });
    expect(plan.secureAggregation?.clipNorm).toBe(plan.privacy.mode === 'dp-fedavg' ? plan.privacy.clipNorm : NaN);
    expect(releasedWithoutDp(plan)).toEqual([]);
    expect(privacyMechanismOf(plan)?.plannedEpsilon).toBeLessThanOrEqual(1);
  });

  it('refuses an unknown privacy mode, naming the three it knows', () => {
    expect(() => demoPlan(silos, 'dp-fedavg', '1')).toThrow('--privacy must be none, dp-sgd or distributed-dp');
  });

  it('personalizes by cross-validated selection when asked, a valid plan without DP and refused under DP-SGD', () => {
    const plan = demoPlan(silos, 'none', '1', {
      personalizeEpochs: 5,
      localBaseline: true,
      personalizeMethod: 'select',
    });
    expect(plan.personalization).toEqual({ method: 'select', epochs: 5, localBaseline: true });
    expect(studyPlanProblems(plan)).toEqual([]);
    expect(demoPlan(silos, 'none', '1', { personalizeEpochs: 5 }).personalization?.method).toBe('fine-tune');
    const dp = demoPlan(silos, 'dp-sgd', '1', { personalizeEpochs: 5, personalizeMethod: 'select' });
    expect(studyPlanProblems(dp)).toEqual([expect.stringMatching(/^personalization\.method: 'select'/) as string]);
    expect(() => demoPlan(silos, 'none', '1', { personalizeMethod: 'select' })).toThrow(
      '--personalize-method needs --personalize <epochs>',
    );
  });
});
