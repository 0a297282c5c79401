import { cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import type { SiloView } from '@tessera/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { defaultDraft, withPrivacyMode, type PlanDraft } from '../../lib/plan-draft.js';
import { deltaWarning } from '../../lib/privacy-plan-checks.js';
import { StudyWizard } from '../study-wizard.js';
import { WIZARD_STEPS } from './wizard-steps.js';

afterEach(cleanup);

const SILOS: SiloView[] = [1, 2].map((n): SiloView => ({
  id: `00000000-0000-4000-8000-00000000000${n}`,
  name: `Hospital ${n}`,
  contact: 'it@example.org',
  status: 'enrolled',
  suspendedReason: null,
  lastSeenAt: null,
  createdAt: '2026-11-22T09:00:00.000Z',
  certificate: null,
  enrollmentPending: null,
}));

function dpDraft(mode: 'dp-sgd' | 'dp-fedavg' = 'dp-sgd'): PlanDraft {
  const d = withPrivacyMode(defaultDraft('test-salt-0001'), mode);
  d.name = 'Cardiac risk';
  d.purpose = 'Predict coronary artery disease from routine findings.';
  d.silos = SILOS.map((s) => s.id);
  return d;
}

const PRIVACY_INDEX = WIZARD_STEPS.findIndex((s) => s.id === 'privacy');
const heading = () => screen.getByRole('heading', { level: 2 }).textContent ?? '';
const descriptionOf = (el: Element) =>
  (el.getAttribute('aria-describedby') ?? '')
    .split(/\s+/)
    .map((id) => (id ? (document.getElementById(id)?.textContent ?? '') : ''))
    .join(' ');

function openPrivacy(draft: PlanDraft, onSubmit = vi.fn(() => Promise.resolve())) {
  render(<StudyWizard initialDraft={draft} silos={SILOS} submitLabel="Create" onSubmit={onSubmit} />);
  const nav = screen.getByRole('navigation', { name: 'Plan steps' });
  fireEvent.click(within(nav).getByRole('button', { name: /Privacy/ }));
  expect(heading()).toBe(`${PRIVACY_INDEX + 1}. Privacy`);
  return onSubmit;
}

describe('the privacy step', () => {
  it('labels the plan’s target and the calculator’s trial value differently', () => {
    openPrivacy(dpDraft());
    expect(screen.getAllByLabelText('Target ε (whole study)')).toHaveLength(1);
    expect(screen.getAllByLabelText('Try a target ε')).toHaveLength(1);
    expect(screen.queryByLabelText('Target ε')).toBeNull();
    expect(screen.getAllByLabelText('Try a noise multiplier σ')).toHaveLength(1);
  });

  it('refuses an impossible target at this step, with the hub’s reason, and moves on once it can be met', () => {
    openPrivacy(dpDraft());
    const target = screen.getByLabelText('Target ε (whole study)');
    fireEvent.change(target, { target: { value: '1e-7' } });
    expect(descriptionOf(target)).toMatch(/no noise multiplier meets target ε = 1e-7/);
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(heading()).toBe(`${PRIVACY_INDEX + 1}. Privacy`);
    fireEvent.change(target, { target: { value: '3' } });
    expect(descriptionOf(target)).not.toMatch(/noise multiplier/);
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(heading()).not.toBe(`${PRIVACY_INDEX + 1}. Privacy`);
  });

  it('refuses a fixed σ too small for the target at the σ field', () => {
    openPrivacy(dpDraft());
    fireEvent.change(screen.getByLabelText('How σ is chosen'), { target: { value: 'fixed' } });
    const sigma = screen.getByLabelText('Noise multiplier σ (relative to C)');
    fireEvent.change(sigma, { target: { value: '0.3' } });
    expect(descriptionOf(sigma)).toMatch(/above the target ε = 3/);
  });

  it('says a number is needed in plain words, naming the field', () => {
    openPrivacy(dpDraft());
    const target = screen.getByLabelText('Target ε (whole study)');
    fireEvent.change(target, { target: { value: 'three' } });
    expect(descriptionOf(target)).toContain('Target ε (whole study) must be a number.');
    expect(descriptionOf(target)).not.toContain('Invalid input');
  });

  it('offers DP-FedAvg noise added by each silo, and says at the box that it needs secure aggregation', () => {
    openPrivacy(dpDraft('dp-fedavg'));
    const box = screen.getByLabelText('Noise added by each silo under secure aggregation (distributed DP)');
    expect((box as HTMLInputElement).checked).toBe(false);
    expect(descriptionOf(box)).not.toMatch(/needs secureAggregation/);
    fireEvent.click(box);
    expect((box as HTMLInputElement).checked).toBe(true);
    expect(descriptionOf(box)).toMatch(/distributed noise needs secureAggregation/);
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(heading()).toBe(`${PRIVACY_INDEX + 1}. Privacy`);
  });

  it('does not offer distributed noise for DP-SGD (its noise is already added at each silo)', () => {
    openPrivacy(dpDraft('dp-sgd'));
    expect(screen.queryByLabelText(/Noise added by each silo/)).toBeNull();
  });

  it('warns about δ = 0.5 and δ ≥ 1/n, and says nothing about a small δ', () => {
    openPrivacy(dpDraft());
    const delta = screen.getByLabelText('δ');
    fireEvent.change(delta, { target: { value: '0.5' } });
    expect(screen.getByRole('note', { name: 'About δ' }).textContent).toMatch(/no meaningful guarantee/);
    fireEvent.change(delta, { target: { value: '0.001' } });
    expect(screen.getByRole('note', { name: 'About δ' }).textContent).toMatch(/1 \/ 1,000/);
    fireEvent.change(delta, { target: { value: '1e-5' } });
    expect(screen.queryByRole('note', { name: 'About δ' })).toBeNull();
  });
});

describe('deltaWarning', () => {
  it('compares δ with 1 / invited silos for DP-FedAvg and 1/δ records for DP-SGD', () => {
    expect(deltaWarning('dp-fedavg', 0.05, 4)).toBeNull();
    expect(deltaWarning('dp-fedavg', 0.05, 20)).toMatch(/at least 1 \/ 20 invited silos/);
    expect(deltaWarning('dp-sgd', 1e-3, 2)).toMatch(/1 \/ 1,000/);
    expect(deltaWarning('dp-sgd', 1e-4, 2)).toBeNull();
    expect(deltaWarning('dp-sgd', 0.5, 2)).toMatch(/no meaningful guarantee/);
    expect(deltaWarning('dp-sgd', Number.NaN, 2)).toBeNull();
  });
});
