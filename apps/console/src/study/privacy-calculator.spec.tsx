import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { epsilonForNoise, noiseForEpsilon } from '@tessera/dp';
import { afterEach, describe, expect, it } from 'vitest';
import { PrivacyCalculator } from './privacy-calculator.js';

afterEach(cleanup);

/** The number an output shows, at full precision (data-value), once the settled calculation is there. */
async function settledValue(label: RegExp): Promise<number> {
  const text = await screen.findByText(label, {}, { timeout: 5000 });
  const output = text.closest('output');
  expect(output).not.toBeNull();
  return Number(output?.getAttribute('data-value'));
}

// Cases: (rounds, local epochs, q, δ, target ε, σ). dp-sgd steps = rounds × epochs × round(1/q).
const CASES = [
  { rounds: 10, localEpochs: 5, samplingRate: 0.05, delta: 1e-5, epsilon: 3, sigma: 1.1 },
  { rounds: 20, localEpochs: 1, samplingRate: 0.01, delta: 1e-6, epsilon: 1, sigma: 2 },
  { rounds: 3, localEpochs: 2, samplingRate: 0.25, delta: 1e-4, epsilon: 8, sigma: 0.8 },
];

describe('privacy calculator', () => {
  for (const c of CASES) {
    it(`matches @tessera/dp for DP-SGD, ${c.rounds} rounds × ${c.localEpochs} epochs, q = ${c.samplingRate}`, async () => {
      const steps = c.rounds * c.localEpochs * Math.round(1 / c.samplingRate);
      render(
        <PrivacyCalculator
          shape={{
            mode: 'dp-sgd',
            rounds: c.rounds,
            localEpochs: c.localEpochs,
            samplingRate: c.samplingRate,
            delta: c.delta,
          }}
          targetEpsilon={String(c.epsilon)}
          noiseMultiplier={String(c.sigma)}
        />,
      );
      const q = { samplingRate: c.samplingRate, steps, delta: c.delta };
      expect(await settledValue(/needs noise multiplier/)).toBe(
        noiseForEpsilon({ ...q, targetEpsilon: c.epsilon }).noiseMultiplier,
      );
      expect(await settledValue(/spends ε =/)).toBe(epsilonForNoise({ ...q, noiseMultiplier: c.sigma }).epsilon);
      expect(screen.getByText(new RegExp(`${steps.toLocaleString('en')} DP-SGD steps`))).toBeTruthy();
    });
  }

  it('follows the inputs as they change, and for DP-FedAvg prices one release per round (q = 1)', async () => {
    const shape = { mode: 'dp-fedavg' as const, rounds: 12, localEpochs: 3, delta: 1e-5 };
    render(<PrivacyCalculator shape={shape} targetEpsilon="4" noiseMultiplier="1" />);
    const q = { samplingRate: 1, steps: 12, delta: 1e-5 };
    expect(await settledValue(/needs noise multiplier/)).toBe(
      noiseForEpsilon({ ...q, targetEpsilon: 4 }).noiseMultiplier,
    );
    fireEvent.change(screen.getByLabelText('Try a target ε'), { target: { value: '0.5' } });
    fireEvent.change(screen.getByLabelText('Try a noise multiplier σ'), { target: { value: '3.5' } });
    await waitForValue(/needs noise multiplier/, noiseForEpsilon({ ...q, targetEpsilon: 0.5 }).noiseMultiplier);
    await waitForValue(/spends ε =/, epsilonForNoise({ ...q, noiseMultiplier: 3.5 }).epsilon);
  });

  it('says why when a target cannot be met, and asks for the plan when it is incomplete', async () => {
    const { rerender } = render(
      <PrivacyCalculator
        shape={{ mode: 'dp-sgd', rounds: 1000, localEpochs: 100, samplingRate: 1, delta: 1e-9 }}
        targetEpsilon="0.000001"
        noiseMultiplier="1"
      />,
    );
    expect(await screen.findByText(/cannot be met/, {}, { timeout: 5000 })).toBeTruthy();
    rerender(<PrivacyCalculator shape={null} targetEpsilon="3" noiseMultiplier="1" />);
    await waitFor(() => expect(screen.getAllByText('Complete the training plan and δ first.').length).toBe(2), {
      timeout: 5000,
    });
  });
});

async function waitForValue(label: RegExp, expected: number): Promise<void> {
  await waitFor(
    () => {
      const output = screen.getByText(label).closest('output');
      expect(Number(output?.getAttribute('data-value'))).toBe(expected);
    },
    { timeout: 5000 },
  );
}
