import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelSpecErrorCode, ModelSpecException } from './ml.exception';
import { denseLayers, outputUnits, parseModelSpec } from './model-spec';
import { parameterLayout } from './parameter-layout';

function codeOf(value: unknown): ModelSpecErrorCode | undefined {
  try {
    parseModelSpec(value);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ModelSpecException);
    return (error as ModelSpecException).code;
  }
}

const mlp = { kind: 'mlp', inputDim: 4, hiddenLayers: [3], activation: 'relu', task: 'binary' };

describe('parseModelSpec', () => {
  it('accepts logistic regression and MLPs', () => {
    expect(parseModelSpec({ kind: 'logistic-regression', inputDim: 13 })).toEqual({
      kind: 'logistic-regression',
      inputDim: 13,
    });
    expect(parseModelSpec({ ...mlp, task: 'multiclass', classes: 10 })).toMatchObject({ classes: 10 });
    expect(parseModelSpec(mlp)).toEqual(mlp);
  });

  it('names the offending field in the error code', () => {
    expect(codeOf(null)).toBe(ModelSpecErrorCode.Spec);
    expect(codeOf({ ...mlp, kind: 'cnn' })).toBe(ModelSpecErrorCode.Kind);
    expect(codeOf({ ...mlp, inputDim: 0 })).toBe(ModelSpecErrorCode.InputDim);
    expect(codeOf({ ...mlp, inputDim: 2.5 })).toBe(ModelSpecErrorCode.InputDim);
    expect(codeOf({ ...mlp, hiddenLayers: [3, -1] })).toBe(ModelSpecErrorCode.HiddenLayers);
    expect(codeOf({ ...mlp, hiddenLayers: 'wide' })).toBe(ModelSpecErrorCode.HiddenLayers);
    expect(codeOf({ ...mlp, activation: 'gelu' })).toBe(ModelSpecErrorCode.Activation);
    expect(codeOf({ ...mlp, task: 'regression' })).toBe(ModelSpecErrorCode.Task);
    expect(codeOf({ ...mlp, task: 'multiclass' })).toBe(ModelSpecErrorCode.Classes);
    expect(codeOf({ ...mlp, task: 'multiclass', classes: 1 })).toBe(ModelSpecErrorCode.Classes);
    expect(codeOf({ ...mlp, classes: 3 })).toBe(ModelSpecErrorCode.Classes);
  });

  it('describes the dense layers: hidden activations, sigmoid or softmax head', () => {
    expect(denseLayers({ kind: 'logistic-regression', inputDim: 5 })).toEqual([
      { inputs: 5, units: 1, activation: 'sigmoid' },
    ]);
    expect(
      denseLayers({
        kind: 'mlp',
        inputDim: 784,
        hiddenLayers: [256],
        activation: 'tanh',
        task: 'multiclass',
        classes: 10,
      }),
    ).toEqual([
      { inputs: 784, units: 256, activation: 'tanh' },
      { inputs: 256, units: 10, activation: 'softmax' },
    ]);
  });

  it('gives a contiguous flat layout of size Σ(in·out + out) (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.integer({ min: 1, max: 20 }), { maxLength: 3 }),
        fc.integer({ min: 2, max: 6 }),
        (inputDim, hiddenLayers, classes) => {
          const spec = {
            kind: 'mlp' as const,
            inputDim,
            hiddenLayers,
            activation: 'relu' as const,
            task: 'multiclass' as const,
            classes,
          };
          const layout = parameterLayout(spec);
          const widths = [inputDim, ...hiddenLayers, outputUnits(spec)];
          let expected = 0;
          for (let l = 1; l < widths.length; l++) expected += widths[l - 1]! * widths[l]! + widths[l]!;
          expect(layout.size).toBe(expected);
          let offset = 0;
          for (const entry of layout.entries) {
            expect(entry.offset).toBe(offset);
            expect(entry.length).toBe(entry.shape.reduce((a, b) => a * b, 1));
            offset += entry.length;
          }
          expect(offset).toBe(layout.size);
        },
      ),
      { numRuns: 50 },
    );
  });
});
