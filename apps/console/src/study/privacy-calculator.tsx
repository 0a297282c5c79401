import { useEffect, useId, useState } from 'react';
import {
  accountingSteps,
  epsilonForSigma,
  noiseForTarget,
  type Calculation,
  type PrivacyMechanismShape,
} from '../lib/privacy-accounting.js';
import { formatSignificant } from '../lib/format.js';
import { numberOf } from '../lib/plan-draft.js';

/** Calibration takes a few hundred milliseconds: wait until the typing stops. */
const SETTLE_MS = 250;

function useSettled<T>(compute: () => T, deps: readonly unknown[]): T | null {
  const [value, setValue] = useState<T | null>(null);
  useEffect(() => {
    setValue(null);
    const t = window.setTimeout(() => setValue(compute()), SETTLE_MS);
    return () => window.clearTimeout(t);
    // The caller lists compute's inputs as deps (compute itself is a new closure on every render).
  }, deps);
  return value;
}

function Result({ label, calc, unit }: { label: string; calc: Calculation<number> | null; unit: string }) {
  return (
    <output className="calc-result" aria-live="polite" data-value={calc?.ok ? String(calc.value) : ''}>
      {calc === null ? (
        <span className="muted">computing…</span>
      ) : calc.ok ? (
        <>
          <span className="calc-label">{label}</span> <strong>{formatSignificant(calc.value)}</strong> {unit}
        </>
      ) : (
        <span className="calc-error">{calc.message}</span>
      )}
    </output>
  );
}

/**
 * Both directions of the privacy accountant for a plan's mechanism, with the same functions as the hub
 * (@tessera/dp/accountant: RDP of the sampled Gaussian, Balle et al. 2020 conversion): a target ε gives the
 * smallest noise multiplier σ that meets it, and a σ gives the ε the whole study spends.
 */
export function PrivacyCalculator({
  shape,
  targetEpsilon,
  noiseMultiplier,
  onUseNoise,
}: {
  /** The mechanism as far as the plan defines it; null while rounds, epochs, q or δ are not valid numbers. */
  shape: PrivacyMechanismShape | null;
  /** Initial values of the two inputs (from the plan). */
  targetEpsilon?: string;
  noiseMultiplier?: string;
  /** Offers to put a calibrated σ into the plan. */
  onUseNoise?: (sigma: number) => void;
}) {
  const id = useId();
  const [epsilonText, setEpsilonText] = useState(targetEpsilon ?? '3');
  const [sigmaText, setSigmaText] = useState(noiseMultiplier ?? '1.1');
  useEffect(() => {
    if (targetEpsilon !== undefined) setEpsilonText(targetEpsilon);
  }, [targetEpsilon]);

  const key = shape ? JSON.stringify(shape) : '';
  const sigmaForTarget = useSettled<Calculation<number> | null>(() => {
    const eps = numberOf(epsilonText);
    if (!shape) return { ok: false, message: 'Complete the training plan and δ first.' };
    if (eps === undefined || !Number.isFinite(eps) || eps <= 0) return { ok: false, message: 'Give ε > 0.' };
    return noiseForTarget(shape, eps);
  }, [key, epsilonText]);
  const epsilonForNoise = useSettled<Calculation<number> | null>(() => {
    const sigma = numberOf(sigmaText);
    if (!shape) return { ok: false, message: 'Complete the training plan and δ first.' };
    if (sigma === undefined || !Number.isFinite(sigma) || sigma <= 0) return { ok: false, message: 'Give σ > 0.' };
    return epsilonForSigma(shape, sigma);
  }, [key, sigmaText]);

  const steps = shape ? accountingSteps(shape) : null;
  return (
    <section className="calc" aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>Privacy calculator</h3>
      {steps && shape ? (
        <p className="hint">
          {shape.mode === 'dp-sgd'
            ? `${steps.steps.toLocaleString('en')} DP-SGD steps = ${shape.rounds} rounds × ${shape.localEpochs} local epochs × ${steps.stepsPerRound / shape.localEpochs} steps per epoch (1/q), sampling rate q = ${shape.samplingRate}, δ = ${shape.delta}.`
            : `${steps.steps} releases (one per round, q = 1), δ = ${shape.delta}.`}{' '}
          Accountant: Rényi DP of the sampled Gaussian, as the hub computes it.
        </p>
      ) : (
        <p className="hint">Complete the training plan (rounds, local epochs) and δ to see the figures.</p>
      )}
      <div className="calc-grid">
        <div className="field">
          <label htmlFor={`${id}-eps`}>Try a target ε</label>
          <input
            id={`${id}-eps`}
            inputMode="decimal"
            value={epsilonText}
            onChange={(e) => setEpsilonText(e.target.value)}
          />
          <Result label="needs noise multiplier σ =" calc={sigmaForTarget} unit="" />
          {onUseNoise && sigmaForTarget?.ok ? (
            <button
              type="button"
              className="button button-small button-secondary calc-use"
              onClick={() => onUseNoise(sigmaForTarget.value)}
            >
              Use σ = {formatSignificant(sigmaForTarget.value)} in the plan
            </button>
          ) : null}
        </div>
        <div className="field">
          <label htmlFor={`${id}-sigma`}>Try a noise multiplier σ</label>
          <input
            id={`${id}-sigma`}
            inputMode="decimal"
            value={sigmaText}
            onChange={(e) => setSigmaText(e.target.value)}
          />
          <Result
            label="spends ε ="
            calc={epsilonForNoise}
            unit={shape ? `over the whole study (δ = ${shape.delta})` : ''}
          />
        </div>
      </div>
    </section>
  );
}
