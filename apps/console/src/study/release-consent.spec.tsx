import { cleanup, render, screen, within } from '@testing-library/react';
import { describeRelease, releasedWithoutDp, type StudyPlan } from '@tessera/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultDraft, draftToPlan, withPrivacyMode, type PrivacyMode } from '../lib/plan-draft.js';
import { plannedEvaluationNoise } from '../lib/privacy-accounting.js';
import { NOTHING_WITHOUT_DP, ReleaseConsent } from './release-consent.js';

afterEach(cleanup);

/** A valid plan with the default releases of a privacy mode. */
function planWith(mode: PrivacyMode): StudyPlan {
  const d = withPrivacyMode(defaultDraft('test-salt-0001'), mode);
  d.name = 'Cardiac risk';
  d.purpose = 'Predict coronary artery disease from routine findings.';
  d.silos = ['00000000-0000-4000-8000-000000000001'];
  d.participation.minSilosPerRound = '1';
  return draftToPlan(d) as StudyPlan;
}

function box(): HTMLElement {
  return screen.getByRole('region', { name: 'Released without differential privacy' });
}

describe('release consent', () => {
  for (const mode of ['none', 'dp-fedavg'] as const) {
    it(`lists, word for word, what a ${mode} plan releases without DP, with its release plan`, () => {
      const plan = planWith(mode);
      render(<ReleaseConsent plan={plan} evaluationNoise={null} />);
      const items = within(box())
        .getAllByRole('listitem')
        .map((li) => li.textContent);
      expect(items).toEqual(releasedWithoutDp(plan));
      expect(items.length).toBeGreaterThan(0);
      expect(box().textContent).not.toContain(NOTHING_WITHOUT_DP);
      expect(box().textContent).toContain(describeRelease(plan));
      expect(box().className).toContain('notice-warning');
    });
  }

  it('says nothing is released without DP for a DP-SGD plan, and gives the evaluation noise and its source', () => {
    const plan = planWith('dp-sgd');
    const computed = plannedEvaluationNoise(plan);
    const { rerender } = render(<ReleaseConsent plan={plan} evaluationNoise={computed} />);
    expect(within(box()).queryAllByRole('listitem')).toEqual([]);
    expect(box().textContent).toContain(NOTHING_WITHOUT_DP);
    expect(box().className).toContain('notice-success');
    expect(box().textContent).toMatch(/over 1 release \(ε = [\d.]+ for the evaluation releases alone\)/);
    expect(box().textContent).toContain('computed by this console');

    rerender(
      <ReleaseConsent
        plan={plan}
        evaluationNoise={{ ok: true, value: { noiseStddev: 6.25, releases: 11, epsilon: null, source: 'hub' } }}
      />,
    );
    expect(box().textContent).toMatch(/standard deviation 6\.25 records, over 11 releases; as the hub derived it/);

    rerender(<ReleaseConsent plan={plan} evaluationNoise={{ ok: false, message: 'ε too small' }} />);
    expect(box().textContent).toContain('cannot be derived: ε too small');
  });
});
