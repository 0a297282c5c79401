import { describe, expect, it } from 'vitest';
import { prepareTabularData, type TabularSchema } from './tabular-data';

/** Everything held for training (testFraction tiny), so the records come back in file order. */
function schema(label: TabularSchema['label']): TabularSchema {
  return {
    features: [{ name: 'age', type: 'numeric' }],
    label,
    missing: 'drop-rows',
    split: { testFraction: 1e-12, salt: 'unit-test/labels/v1' },
  };
}

const csv = (labels: string[]) => ['age,num', ...labels.map((l, i) => `${40 + i},${l}`)].join('\n');

describe('prepareTabularData: multiclass and regression labels', () => {
  it('gives class indices in the declared order (canonical text: "2.0" is class "2") and drops other labels', () => {
    const data = prepareTabularData(
      csv(['0', '2.0', '4', '1', '7', 'x']),
      schema({ column: 'num', operator: 'class', classes: ['0', '1', '2', '3', '4'] }),
    );
    expect(data.train.y).toBeInstanceOf(Int32Array);
    expect(Array.from(data.train.y)).toEqual([0, 2, 4, 1]);
    expect(data.dropped).toEqual([{ reason: 'unknown-level', column: 'num', rows: 2, firstRow: 6 }]);
  });

  it('gives the scaled value of a regression label, dropping non-numbers and values beyond the encoded range', () => {
    const data = prepareTabularData(
      csv(['150', '120.5', 'abc', '1e12']),
      schema({ column: 'num', operator: 'value', scaling: { center: 150, scale: 20 } }),
    );
    expect(data.train.y).toBeInstanceOf(Float32Array);
    expect(Array.from(data.train.y)).toEqual([0, Math.fround(-29.5 / 20)]);
    expect(data.dropped.map((d) => d.reason)).toEqual(['not-numeric', 'out-of-range']);
  });

  it('keeps 0/1 labels in a Uint8Array for binary rules', () => {
    const data = prepareTabularData(csv(['0', '3']), schema({ column: 'num', operator: '>', threshold: 0 }));
    expect(data.train.y).toBeInstanceOf(Uint8Array);
    expect(Array.from(data.train.y)).toEqual([0, 1]);
  });
});
