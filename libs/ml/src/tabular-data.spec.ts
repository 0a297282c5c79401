import { describe, expect, it } from 'vitest';
import { TabularDataErrorCode, TabularDataException } from './ml.exception';
import { seededUniform } from './seeded-random';
import { parseCsv, prepareTabularData, type TabularSchema } from './tabular-data';

/** A value that must never appear in an error message. */
const SECRET = 'PATIENT-7731';

const schema: TabularSchema = {
  missingValues: ['NA'],
  features: [
    { name: 'age', type: 'numeric' },
    { name: 'ward', type: 'categorical', levels: ['a', 'b', 'c'] },
  ],
  label: { column: 'outcome', operator: '>', threshold: 0 },
  missing: 'drop-rows',
  split: { testFraction: 0.25, seed: 1, stratify: true },
  standardize: true,
};

/** Builds a CSV with a header from generated rows. */
function csv(rows: number, seed: number, mutate?: (cells: string[], i: number) => void): string {
  const random = seededUniform(seed);
  const lines = ['id,age,ward,outcome'];
  for (let i = 0; i < rows; i++) {
    const cells = [`p${i}`, String(20 + Math.floor(random() * 60)), 'abc'[Math.floor(random() * 3)]!, String(i % 3)];
    mutate?.(cells, i);
    lines.push(cells.join(','));
  }
  return lines.join('\n') + '\n';
}

function errorOf(run: () => unknown): TabularDataException {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(TabularDataException);
    return error as TabularDataException;
  }
  throw new Error('expected a TabularDataException');
}

describe('parseCsv', () => {
  it('handles quotes, escaped quotes, CRLF and blank lines (RFC 4180)', () => {
    expect(parseCsv('a, b ,"c, d"\r\n\r\n"say ""hi""",2,\n')).toEqual([
      ['a', 'b', 'c, d'],
      ['say "hi"', '2', ''],
    ]);
  });

  it('reports an unterminated quote by line number only', () => {
    const error = errorOf(() => parseCsv(`a,b\n"${SECRET},c\n`));
    expect(error.code).toBe(TabularDataErrorCode.MalformedCsv);
    expect(error.message).not.toContain(SECRET);
  });
});

describe('prepareTabularData', () => {
  it('one-hot encodes dropping the first level, derives labels and splits 75/25 stratified', () => {
    const data = prepareTabularData(csv(40, 3), schema);
    expect(data.featureNames).toEqual(['age', 'ward=b', 'ward=c']);
    expect([data.train.n, data.test.n]).toEqual([30, 10]);
    expect(data.train.x).toHaveLength(90);
    // 2/3 of the rows are positive (outcome 1 or 2): the test split keeps that proportion (largest remainder).
    const positives = (y: Uint8Array) => y.reduce((s, v) => s + v, 0);
    expect(positives(data.train.y) + positives(data.test.y)).toBe(26);
    expect(positives(data.test.y)).toBe(Math.round((26 * 10) / 40));
    expect(prepareTabularData(csv(40, 3), schema)).toEqual(data); // fixed seed, fixed split
  });

  it('standardises with the training split: train columns get mean 0 and sample std 1', () => {
    const data = prepareTabularData(csv(60, 4), schema);
    const width = data.featureNames.length;
    for (let c = 0; c < width; c++) {
      const column = Array.from({ length: data.train.n }, (_, r) => data.train.x[r * width + c]!);
      const mean = column.reduce((s, v) => s + v, 0) / column.length;
      const variance = column.reduce((s, v) => s + (v - mean) ** 2, 0) / (column.length - 1);
      expect(mean).toBeCloseTo(0, 5);
      expect(variance).toBeCloseTo(1, 4);
    }
    expect(data.standardization?.mean).toHaveLength(width);
  });

  it('drops rows with missing features, or imputes the training mean', () => {
    const text = csv(40, 5, (cells, i) => {
      if (i % 10 === 0) cells[1] = 'NA';
    });
    expect(prepareTabularData(text, schema).rowsKept).toBe(36);
    const imputed = prepareTabularData(text, { ...schema, missing: 'impute-mean', standardize: false });
    expect(imputed.rowsKept).toBe(40);
    expect(Array.from(imputed.train.x).every(Number.isFinite)).toBe(true);
  });

  it('names a missing column without echoing data', () => {
    const error = errorOf(() =>
      prepareTabularData(csv(10, 1), { ...schema, label: { column: 'death', operator: '==', threshold: 1 } }),
    );
    expect(error.code).toBe(TabularDataErrorCode.MissingColumn);
    expect(error.column).toBe('death');
    expect(error.message).toContain('death');
  });

  it('never echoes the offending value of a non-numeric or unknown categorical cell', () => {
    const nonNumeric = errorOf(() =>
      prepareTabularData(
        csv(20, 1, (cells, i) => {
          if (i === 7) cells[1] = SECRET;
        }),
        schema,
      ),
    );
    expect(nonNumeric.code).toBe(TabularDataErrorCode.NotNumeric);
    expect(nonNumeric.column).toBe('age');
    expect(nonNumeric.message).not.toContain(SECRET);

    const unknown = errorOf(() =>
      prepareTabularData(
        csv(20, 1, (cells, i) => {
          if (i === 3) cells[2] = SECRET;
        }),
        schema,
      ),
    );
    expect(unknown.code).toBe(TabularDataErrorCode.UnknownLevel);
    expect(unknown.message).not.toContain(SECRET);

    const ragged = errorOf(() => prepareTabularData(`${csv(5, 1)}${SECRET},1\n`, schema));
    expect(ragged.code).toBe(TabularDataErrorCode.RowLength);
    expect(ragged.message).not.toContain(SECRET);
  });

  it('learns levels from the data when none are fixed, in numeric order', () => {
    const text = 'x,g,y\n1,10,0\n2,9,1\n3,10.0,0\n4,9,1\n5,11,0\n6,10,1\n';
    const data = prepareTabularData(text, {
      ...schema,
      features: [{ name: 'g', type: 'categorical' }],
      label: { column: 'y', operator: 'in', values: ['1'] },
      split: { testFraction: 0.34, seed: 2, stratify: false },
      standardize: false,
    });
    expect(data.featureNames).toEqual(['g=10', 'g=11']);
    expect(data.train.n + data.test.n).toBe(6);
    expect(data.test.n).toBe(3); // ceil(0.34 · 6)
  });
});
