import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import { trainLocal, type LocalTrainingInput } from './local-training';
import { TrainingInputException } from './ml.exception';
import type { ModelSpec } from './model-spec';
import { initialParameters, parameterLayout } from './parameter-layout';
import { controlCorrection, scaffoldControlUpdate, serverControlStep } from './scaffold';
import { seededUniform } from './seeded-random';

describe('SCAFFOLD control variates (hand-computed, Karimireddy et al. 2020, Algorithm 1 option II)', () => {
  // Two parameters, K = 4 local steps at η = 0.5, so 1/(Kη) = 0.5.
  // c_i = (0.2, −0.1), c = (0.1, 0.3), delta = y_i − x = (−0.4, 0.6):
  // c_i⁺ = c_i − c − delta/(Kη) = (0.2 − 0.1 + 0.2, −0.1 − 0.3 − 0.3) = (0.3, −0.7); Δc_i = (0.1, −0.6).
  const clientControl = Float32Array.of(0.2, -0.1);
  const serverControl = Float32Array.of(0.1, 0.3);
  const delta = Float32Array.of(-0.4, 0.6);

  it('updates the silo control variate and returns its delta', () => {
    const { control, controlDelta } = scaffoldControlUpdate({
      clientControl,
      serverControl,
      delta,
      steps: 4,
      learningRate: 0.5,
    });
    expect(control[0]).toBeCloseTo(0.3, 6);
    expect(control[1]).toBeCloseTo(-0.7, 6);
    expect(controlDelta[0]).toBeCloseTo(0.1, 6);
    expect(controlDelta[1]).toBeCloseTo(-0.6, 6);
  });

  it('corrects each step by c − c_i', () => {
    const correction = controlCorrection(serverControl, clientControl);
    expect(correction[0]).toBeCloseTo(-0.1, 6);
    expect(correction[1]).toBeCloseTo(0.4, 6);
  });

  it('moves the server control variate by |S|/N of the mean control delta', () => {
    // c = (0.1, 0.3), mean Δc = (0.4, −0.8), 3 of 4 silos aggregated: c⁺ = (0.1 + 0.3, 0.3 − 0.6) = (0.4, −0.3).
    const next = serverControlStep(serverControl, Float32Array.of(0.4, -0.8), 3, 4);
    expect(next[0]).toBeCloseTo(0.4, 6);
    expect(next[1]).toBeCloseTo(-0.3, 6);
    expect(() => serverControlStep(serverControl, Float32Array.of(0.4, -0.8), 5, 4)).toThrow(RangeError);
  });

  it('refuses mismatched lengths and bad step counts', () => {
    expect(() =>
      scaffoldControlUpdate({ clientControl, serverControl, delta: Float32Array.of(1), steps: 4, learningRate: 0.5 }),
    ).toThrow(TrainingInputException);
    expect(() => scaffoldControlUpdate({ clientControl, serverControl, delta, steps: 0, learningRate: 0.5 })).toThrow(
      TrainingInputException,
    );
  });
});

describe('SCAFFOLD in local training', () => {
  const spec: ModelSpec = { kind: 'logistic-regression', inputDim: 3 };
  const size = parameterLayout(spec).size;

  beforeAll(async () => {
    await selectBackend('cpu');
  });

  function input(): LocalTrainingInput {
    const random = seededUniform(3);
    const x = Float32Array.from({ length: 24 * 3 }, () => 2 * random() - 1);
    const y = Uint8Array.from({ length: 24 }, (_, i) => (x[3 * i]! > 0 ? 1 : 0));
    // One full-batch step: the gradient is taken at the global model, so the correction's effect is exactly −η·corr.
    return { spec, parameters: initialParameters(spec, 5), x, y, learningRate: 0.2, batchSize: 24, steps: 1, seed: 1 };
  }

  it('steps on g + (c − c_i), and option II then recovers the gradient itself as c_i⁺', async () => {
    const plain = await trainLocal(input());
    const serverControl = Float32Array.from({ length: size }, (_, i) => 0.05 * (i + 1));
    const clientControl = Float32Array.from({ length: size }, (_, i) => -0.02 * i);
    const correction = controlCorrection(serverControl, clientControl);
    const corrected = await trainLocal({ ...input(), controlCorrection: correction });
    for (let i = 0; i < size; i++) {
      expect(corrected.delta[i]).toBeCloseTo(plain.delta[i]! - 0.2 * correction[i]!, 6);
    }
    const { control } = scaffoldControlUpdate({
      clientControl,
      serverControl,
      delta: corrected.delta,
      steps: corrected.steps,
      learningRate: 0.2,
    });
    // The plain step is −η·g, so g = −plain.delta / η: c_i⁺ is the gradient the silo stepped on.
    for (let i = 0; i < size; i++) expect(control[i]).toBeCloseTo(-plain.delta[i]! / 0.2, 4);
  });

  it('refuses a correction of the wrong length', async () => {
    await expect(trainLocal({ ...input(), controlCorrection: new Float32Array(size + 1) })).rejects.toThrow(
      /controlCorrection must be a Float32Array/,
    );
  });
});
