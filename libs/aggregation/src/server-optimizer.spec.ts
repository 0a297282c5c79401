import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import { crc32, STATE_HEADER_BYTES } from './optimizer-state-codec';
import {
  FedAdagradServerOptimizer,
  FedAdamServerOptimizer,
  FedAvgMServerOptimizer,
  FedAvgServerOptimizer,
  FedYogiServerOptimizer,
  type ServerOptimizer,
} from './server-optimizer';

const f32 = (...xs: number[]): Float32Array => Float32Array.from(xs);

/** Float32 storage of m, v and x costs ~1e-7 relative per step; hand values are float64. */
function expectClose(actual: Float32Array, expected: readonly number[]): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(Math.abs(actual[i]! - e)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(e))));
}

function codeOf(run: () => unknown): AggregationErrorCode | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof AggregationException) return error.code;
    throw error;
  }
  return undefined;
}

describe('FedAvgServerOptimizer (McMahan et al. 2017)', () => {
  it('moves the global model by η times the mean delta', () => {
    // x = [1, 2], Δ = [3.25, 1.25]: η = 1 → [4.25, 3.25]; η = 0.5 → [1 + 1.625, 2 + 0.625] = [2.625, 2.625]
    const plain = new FedAvgServerOptimizer({ length: 2 });
    const step = plain.step(f32(1, 2), f32(3.25, 1.25));
    expect(Array.from(step.weights)).toEqual([4.25, 3.25]);
    expect(step.trace).toEqual({
      step: 'server-optimizer',
      algorithm: 'fedavg',
      round: 1,
      serverLearningRate: 1,
      hyperparameters: {},
    });
    const half = new FedAvgServerOptimizer({ length: 2, serverLearningRate: 0.5 });
    expect(Array.from(half.step(f32(1, 2), f32(3.25, 1.25)).weights)).toEqual([2.625, 2.625]);
  });

  it('does not modify the global model it is given', () => {
    const global = f32(1, 2);
    new FedAvgServerOptimizer({ length: 2 }).step(global, f32(1, 1));
    expect(Array.from(global)).toEqual([1, 2]);
  });
});

describe('FedAvgMServerOptimizer (Hsu et al. 2019)', () => {
  it('applies server momentum over three rounds', () => {
    // β = 0.5, η = 1, v₋₁ = 0, x₀ = [0, 0]
    // t=1 Δ = [1, -2]:  v = [1, -2]                              x = [1, -2]
    // t=2 Δ = [1, 2]:   v = 0.5·[1, -2] + [1, 2] = [1.5, 1]      x = [2.5, -1]
    // t=3 Δ = [0, 0]:   v = [0.75, 0.5]                          x = [3.25, -0.5]
    const opt = new FedAvgMServerOptimizer({ length: 2, momentum: 0.5 });
    let x = opt.step(f32(0, 0), f32(1, -2)).weights;
    expect(Array.from(x)).toEqual([1, -2]);
    x = opt.step(x, f32(1, 2)).weights;
    expect(Array.from(x)).toEqual([2.5, -1]);
    const last = opt.step(x, f32(0, 0));
    expect(Array.from(last.weights)).toEqual([3.25, -0.5]);
    expect(last.trace.round).toBe(3);
    expect(last.trace.hyperparameters).toEqual({ momentum: 0.5 });
  });
});

describe('adaptive server optimizers (Reddi et al. 2021, Algorithm 2, no bias correction)', () => {
  it('FedAdagrad: two rounds by hand', () => {
    // β1 = 0 (default), τ = 0.5, v₋₁ = τ² = 0.25, η = 1, x₀ = [1, 1]
    // t=1 Δ = [1, -2]: m = [1, -2]; v = 0.25 + Δ² = [1.25, 4.25]
    //   x₁ = x₀ + m / (√v + τ) = [1 + 1/(1.1180340 + 0.5), 1 - 2/(2.0615528 + 0.5)]
    //      = [1 + 0.6180340, 1 - 0.7807764] = [1.6180340, 0.2192236]
    // t=2 Δ = [1, 0]: m = [1, 0]; v = [2.25, 4.25]; x₂ = x₁ + [1/(1.5 + 0.5), 0] = [2.1180340, 0.2192236]
    const opt = new FedAdagradServerOptimizer({ length: 2, serverLearningRate: 1, tau: 0.5 });
    const x1 = opt.step(f32(1, 1), f32(1, -2)).weights;
    expectClose(x1, [1.618033988749895, 0.21922359359558485]);
    expect(Array.from(opt.moments().v)).toEqual([1.25, 4.25]);
    const x2 = opt.step(x1, f32(1, 0)).weights;
    expectClose(x2, [2.118033988749895, 0.21922359359558485]);
    expect(Array.from(opt.moments().v)).toEqual([2.25, 4.25]);
    expect(Array.from(opt.moments().m)).toEqual([1, 0]);
  });

  it('FedAdam: three rounds by hand', () => {
    // β1 = 0.5, β2 = 0.75, τ = 0.5, v₋₁ = 0.25, η = 1, x₀ = [0, 0]
    // t=1 Δ = [2, -1]: m = 0.5·Δ = [1, -0.5]; v = 0.75·0.25 + 0.25·[4, 1] = [1.1875, 0.4375]
    //   x₁ = [1/(√1.1875 + 0.5), -0.5/(√0.4375 + 0.5)] = [1/1.5897247, -0.5/1.1614378] = [0.6290397, -0.4305009]
    // t=2 Δ = [0, 1]: m = [0.5, 0.25]; v = 0.75·[1.1875, 0.4375] + 0.25·[0, 1] = [0.890625, 0.578125]
    //   x₂ = x₁ + [0.5/(0.9437293 + 0.5), 0.25/(0.7603453 + 0.5)] = x₁ + [0.3463253, 0.1983583]
    //      = [0.9753650, -0.2321425]
    // t=3 Δ = [-1, 0]: m = [-0.25, 0.125]; v = [0.66796875 + 0.25, 0.43359375] = [0.91796875, 0.43359375]
    //   x₃ = x₂ + [-0.25/(0.9581069 + 0.5), 0.125/(0.6584784 + 0.5)] = x₂ + [-0.1714552, 0.1079002]
    //      = [0.8039098, -0.1242424]
    const opt = new FedAdamServerOptimizer({ length: 2, serverLearningRate: 1, beta1: 0.5, beta2: 0.75, tau: 0.5 });
    const x1 = opt.step(f32(0, 0), f32(2, -1)).weights;
    const e1 = [1 / (Math.sqrt(1.1875) + 0.5), -0.5 / (Math.sqrt(0.4375) + 0.5)];
    expectClose(x1, e1);
    const x2 = opt.step(x1, f32(0, 1)).weights;
    const e2 = [e1[0]! + 0.5 / (Math.sqrt(0.890625) + 0.5), e1[1]! + 0.25 / (Math.sqrt(0.578125) + 0.5)];
    expectClose(x2, e2);
    const x3 = opt.step(x2, f32(-1, 0)).weights;
    const e3 = [e2[0]! - 0.25 / (Math.sqrt(0.91796875) + 0.5), e2[1]! + 0.125 / (Math.sqrt(0.43359375) + 0.5)];
    expectClose(x3, e3);
    expect(Array.from(opt.moments().m)).toEqual([-0.25, 0.125]);
    expect(Array.from(opt.moments().v)).toEqual([0.91796875, 0.43359375]);
    expect(opt.round).toBe(3);
  });

  // Decimals in these comments were checked with a calculator (Python math module), not with this library.
  it('FedAdam: the hand-derived decimals agree (guards the formulas above)', () => {
    const opt = new FedAdamServerOptimizer({ length: 2, serverLearningRate: 1, beta1: 0.5, beta2: 0.75, tau: 0.5 });
    const x1 = opt.step(f32(0, 0), f32(2, -1)).weights;
    const x2 = opt.step(x1, f32(0, 1)).weights;
    const x3 = opt.step(x2, f32(-1, 0)).weights;
    expect(x1[0]).toBeCloseTo(0.6290397, 6);
    expect(x1[1]).toBeCloseTo(-0.4305009, 6);
    expect(x2[0]).toBeCloseTo(0.975365, 6);
    expect(x2[1]).toBeCloseTo(-0.2321425, 6);
    expect(x3[0]).toBeCloseTo(0.8039098, 6);
    expect(x3[1]).toBeCloseTo(-0.1242424, 6);
  });

  it('FedYogi: three rounds by hand, including sign(0) = 0', () => {
    // β1 = 0.5, β2 = 0.75, τ = 0.5, v₋₁ = 0.25, η = 1, x₀ = [0, 0]
    // t=1 Δ = [2, 0.25]: Δ² = [4, 0.0625]; sign(v − Δ²) = [-1, +1]
    //   v = [0.25 + 0.25·4, 0.25 − 0.25·0.0625] = [1.25, 0.234375]; m = [1, 0.125]
    //   x₁ = [1/(√1.25 + 0.5), 0.125/(√0.234375 + 0.5)] = [0.6180340, 0.1270167]
    // t=2 Δ = [1, 0.5]: Δ² = [1, 0.25]; sign = [+1 (1.25 > 1), -1 (0.234375 < 0.25)]
    //   v = [1.25 − 0.25, 0.234375 + 0.0625] = [1, 0.296875]; m = [0.5 + 0.5, 0.0625 + 0.25] = [1, 0.3125]
    //   x₂ = x₁ + [1/(1 + 0.5), 0.3125/(√0.296875 + 0.5)] = x₁ + [0.6666667, 0.2990825]
    // t=3 Δ = [1, 0]: Δ² = [1, 0]; sign = [0 (v = Δ²), +1] → v unchanged = [1, 0.296875]; m = [1, 0.15625]
    //   x₃ = x₂ + [1/1.5, 0.15625/(√0.296875 + 0.5)] = x₂ + [0.6666667, 0.1495412] = [1.9513673, 0.5756403]
    const opt = new FedYogiServerOptimizer({ length: 2, serverLearningRate: 1, beta1: 0.5, beta2: 0.75, tau: 0.5 });
    const x1 = opt.step(f32(0, 0), f32(2, 0.25)).weights;
    const e1 = [1 / (Math.sqrt(1.25) + 0.5), 0.125 / (Math.sqrt(0.234375) + 0.5)];
    expectClose(x1, e1);
    expect(Array.from(opt.moments().v)).toEqual([1.25, 0.234375]);
    const x2 = opt.step(x1, f32(1, 0.5)).weights;
    const e2 = [e1[0]! + 1 / 1.5, e1[1]! + 0.3125 / (Math.sqrt(0.296875) + 0.5)];
    expectClose(x2, e2);
    expect(Array.from(opt.moments().v)).toEqual([1, 0.296875]);
    const x3 = opt.step(x2, f32(1, 0)).weights;
    expectClose(x3, [e2[0]! + 1 / 1.5, e2[1]! + 0.15625 / (Math.sqrt(0.296875) + 0.5)]);
    expect(Array.from(opt.moments().v)).toEqual([1, 0.296875]);
    expect(Array.from(opt.moments().m)).toEqual([1, 0.15625]);
    expect(x1[1]).toBeCloseTo(0.1270167, 6);
    expect(x2[1]! - x1[1]!).toBeCloseTo(0.2990825, 6);
    expect(x3[0]).toBeCloseTo(1.9513673, 6);
    expect(x3[1]).toBeCloseTo(0.5756403, 6);
  });

  it('initialises v to τ² and enforces v₋₁ ≥ τ²', () => {
    const opt = new FedAdamServerOptimizer({ length: 3, serverLearningRate: 0.1, tau: 0.01 });
    expect(Array.from(opt.moments().v)).toEqual(Array(3).fill(Math.fround(1e-4)));
    expect(
      codeOf(
        () => new FedYogiServerOptimizer({ length: 3, serverLearningRate: 1, tau: 0.1, initialSecondMoment: 0.001 }),
      ),
    ).toBe(AggregationErrorCode.InvalidParameter);
  });

  it('rejects out-of-range hyperparameters', () => {
    const bad = [
      () => new FedAdamServerOptimizer({ length: 2, serverLearningRate: 0 }),
      () => new FedAdamServerOptimizer({ length: 2, serverLearningRate: 1, beta1: 1 }),
      () => new FedAdamServerOptimizer({ length: 2, serverLearningRate: 1, beta2: -0.1 }),
      () => new FedAdamServerOptimizer({ length: 2, serverLearningRate: 1, tau: 0 }),
      () => new FedAvgMServerOptimizer({ length: 2, momentum: 1.5 }),
      () => new FedAvgServerOptimizer({ length: 0 }),
    ];
    bad.forEach((make) => expect(codeOf(make)).toBe(AggregationErrorCode.InvalidParameter));
  });

  it('refuses a bad delta before touching its state', () => {
    const opt = new FedAdamServerOptimizer({ length: 2, serverLearningRate: 1 });
    opt.step(f32(0, 0), f32(1, 1));
    const before = opt.serializeState();
    expect(codeOf(() => opt.step(f32(0, 0), f32(1, Number.NaN)))).toBe(AggregationErrorCode.NonFiniteValue);
    expect(codeOf(() => opt.step(f32(0, 0), f32(1)))).toBe(AggregationErrorCode.LengthMismatch);
    expect(codeOf(() => opt.step(f32(0), f32(1, 1)))).toBe(AggregationErrorCode.LengthMismatch);
    expect(opt.serializeState()).toEqual(before);
    expect(opt.round).toBe(1);
  });
});

const makers: Record<string, (length: number) => ServerOptimizer> = {
  fedavg: (length) => new FedAvgServerOptimizer({ length, serverLearningRate: 0.7 }),
  fedavgm: (length) => new FedAvgMServerOptimizer({ length, momentum: 0.8 }),
  fedadagrad: (length) => new FedAdagradServerOptimizer({ length, serverLearningRate: 0.1, beta1: 0.3 }),
  fedadam: (length) => new FedAdamServerOptimizer({ length, serverLearningRate: 0.1 }),
  fedyogi: (length) => new FedYogiServerOptimizer({ length, serverLearningRate: 0.1 }),
};

describe('server optimizer state persistence', () => {
  for (const [name, make] of Object.entries(makers)) {
    it(`${name}: a restored optimizer continues bit-for-bit (property)`, () => {
      const delta = (m: number) =>
        fc.float32Array({ minLength: m, maxLength: m, noNaN: true, noDefaultInfinity: true, min: -10, max: 10 });
      fc.assert(
        fc.property(
          fc
            .integer({ min: 1, max: 6 })
            .chain((m) => fc.tuple(fc.array(delta(m), { minLength: 1, maxLength: 3 }), delta(m))),
          ([history, next]) => {
            const m = next.length;
            const original = make(m);
            let x: Float32Array = new Float32Array(m);
            for (const d of history) x = original.step(x, d).weights;
            const bytes = original.serializeState();
            const restored = make(m);
            restored.restoreState(bytes);
            expect(restored.round).toBe(history.length);
            expect(restored.serializeState()).toEqual(bytes);
            expect(restored.step(x, next).weights).toEqual(original.step(x, next).weights);
          },
        ),
        { numRuns: 40 },
      );
    });
  }

  it('writes the documented header', () => {
    const opt = new FedAdamServerOptimizer({ length: 3, serverLearningRate: 0.25, beta1: 0.5, beta2: 0.75, tau: 0.5 });
    opt.step(f32(0, 0, 0), f32(1, 2, 3));
    const bytes = opt.serializeState();
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    expect(bytes.length).toBe(STATE_HEADER_BYTES + 2 * 3 * 4);
    expect(String.fromCharCode(...bytes.subarray(0, 4))).toBe('TSOS');
    expect(view.getUint16(4, true)).toBe(1);
    expect(view.getUint8(6)).toBe(4); // fedadam
    expect(view.getUint8(7)).toBe(2); // m and v
    expect(view.getUint32(8, true)).toBe(3);
    expect(view.getUint32(12, true)).toBe(1);
    expect([16, 24, 32, 40, 48].map((o) => view.getFloat64(o, true))).toEqual([0.25, 0.5, 0.75, 0.5, 0.25]);
    // m after one step = 0.5·Δ
    expect(Array.from(new Float32Array(bytes.slice(64, 76).buffer))).toEqual([0.5, 1, 1.5]);
  });

  it('accepts state at a byte offset inside a larger buffer (unaligned)', () => {
    const opt = new FedYogiServerOptimizer({ length: 5, serverLearningRate: 0.1 });
    opt.step(new Float32Array(5), f32(1, 2, 3, 4, 5));
    const bytes = opt.serializeState();
    const padded = new Uint8Array(bytes.length + 3);
    padded.set(bytes, 3);
    const other = new FedYogiServerOptimizer({ length: 5, serverLearningRate: 0.1 });
    other.restoreState(padded.subarray(3));
    expect(other.serializeState()).toEqual(bytes);
  });

  it('restores from a Node Buffer read from disk (a view into a shared pool)', () => {
    const opt = new FedAdamServerOptimizer({ length: 5, serverLearningRate: 0.1 });
    opt.step(new Float32Array(5), f32(1, 2, 3, 4, 5));
    const bytes = opt.serializeState();
    // Small Buffers share one pre-allocated pool: their .buffer is much larger than the bytes themselves.
    const pooled = Buffer.from(bytes);
    const other = new FedAdamServerOptimizer({ length: 5, serverLearningRate: 0.1 });
    other.restoreState(pooled);
    expect(other.serializeState()).toEqual(bytes);
  });

  describe('refuses corrupt or foreign state and stays unchanged', () => {
    const fresh = () => {
      const opt = new FedAdamServerOptimizer({ length: 4, serverLearningRate: 0.1 });
      opt.step(new Float32Array(4), f32(1, -1, 2, -2));
      return opt;
    };
    const good = fresh().serializeState();
    const mutate = (edit: (bytes: Uint8Array, view: DataView) => void): Uint8Array => {
      const copy = good.slice();
      edit(copy, new DataView(copy.buffer));
      return copy;
    };
    const withChecksum = (bytes: Uint8Array): Uint8Array => {
      const crc = crc32(bytes.subarray(STATE_HEADER_BYTES), crc32(bytes.subarray(0, 56)));
      new DataView(bytes.buffer, bytes.byteOffset).setUint32(56, crc, true);
      return bytes;
    };
    const cases: [string, () => Uint8Array, AggregationErrorCode, () => ServerOptimizer][] = [
      ['a flipped payload bit', () => mutate((b) => (b[70]! ^= 0x10)), AggregationErrorCode.StateCorrupt, fresh],
      ['a flipped header bit', () => mutate((b) => (b[20]! ^= 0x01)), AggregationErrorCode.StateCorrupt, fresh],
      ['truncation', () => good.slice(0, good.length - 4), AggregationErrorCode.StateCorrupt, fresh],
      ['an empty buffer', () => new Uint8Array(0), AggregationErrorCode.StateCorrupt, fresh],
      ['a wrong magic', () => mutate((b) => (b[0] = 0x58)), AggregationErrorCode.StateCorrupt, fresh],
      [
        'a future version',
        () => withChecksum(mutate((_, v) => v.setUint16(4, 2, true))),
        AggregationErrorCode.StateCorrupt,
        fresh,
      ],
      [
        'NaN in the payload',
        () => withChecksum(mutate((_, v) => v.setFloat32(64, Number.NaN, true))),
        AggregationErrorCode.StateCorrupt,
        fresh,
      ],
      [
        'another algorithm',
        () => good,
        AggregationErrorCode.StateMismatch,
        () => new FedYogiServerOptimizer({ length: 4, serverLearningRate: 0.1 }),
      ],
      [
        'another length',
        () => good,
        AggregationErrorCode.StateMismatch,
        () => new FedAdamServerOptimizer({ length: 5, serverLearningRate: 0.1 }),
      ],
      [
        'other hyperparameters',
        () => good,
        AggregationErrorCode.StateMismatch,
        () => new FedAdamServerOptimizer({ length: 4, serverLearningRate: 0.2 }),
      ],
    ];
    for (const [what, bytes, code, target] of cases) {
      it(what, () => {
        const opt = target();
        const before = opt.serializeState();
        const roundBefore = opt.round;
        expect(codeOf(() => opt.restoreState(bytes()))).toBe(code);
        expect(opt.serializeState()).toEqual(before);
        expect(opt.round).toBe(roundBefore);
      });
    }
  });
});
