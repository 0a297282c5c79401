import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TabularDataErrorCode, TabularDataException } from './ml.exception';
import {
  MAX_ENCODED_MAGNITUDE,
  canonicalCell,
  parseCsv,
  prepareTabularData,
  type FeatureColumn,
  type PreparedTabularData,
  type TabularSchema,
  type TabularSplit,
} from './tabular-data';

/** A value that must never appear in an error message or in the local drop summary. */
const SECRET = 'PATIENT-7731';

/** The schema most examples use: a scaled numeric, a categorical, a threshold label. */
function wardSchema(overrides: Partial<TabularSchema> = {}): TabularSchema {
  return {
    missingValues: ['NA'],
    features: [
      { name: 'age', type: 'numeric', scaling: { center: 55, scale: 10 }, impute: 60 },
      { name: 'ward', type: 'categorical', levels: ['a', 'b', 'c'], impute: 'c' },
    ],
    label: { column: 'outcome', operator: '>', threshold: 0 },
    missing: 'drop-rows',
    split: { testFraction: 0.25, salt: 'unit-test/split/v1' },
    ...overrides,
  };
}

/** A CSV with header `id,age,ward,outcome` from rows of [age, ward, outcome] cells (id p0, p1, …). */
function wardCsv(rows: readonly (readonly string[])[]): string {
  return ['id,age,ward,outcome', ...rows.map((cells, i) => [`p${i}`, ...cells].join(','))].join('\n') + '\n';
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

/** Each record of a split as the hex of its float32 features (bit for bit) and its label. */
function recordsOf(split: TabularSplit): string[] {
  const width = split.n === 0 ? 0 : split.x.length / split.n;
  return Array.from({ length: split.n }, (_, i) => {
    const bytes = Buffer.from(split.x.buffer, split.x.byteOffset + i * width * 4, width * 4);
    return `${bytes.toString('hex')}:${split.y[i]}`;
  });
}

/** The split fraction the hash gives a record whose canonical bytes are `message`: u / 2^64. */
function hashFraction(salt: string, message: Buffer): number {
  return Number(createHmac('sha256', Buffer.from(salt, 'utf8')).update(message).digest().readBigUInt64BE(0)) / 2 ** 64;
}

/** One length-prefixed present field of the canonical record bytes (0x01, u32 BE length, UTF-8). */
function present(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const head = Buffer.alloc(5);
  head[0] = 1;
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
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

describe('canonicalCell', () => {
  it('trims, and writes decimal numbers in their shortest round-trip form', () => {
    expect(['1.0', ' +1 ', '1e0', '01', '-0', '.5', '2.50', '1E3'].map(canonicalCell)).toEqual([
      '1',
      '1',
      '1',
      '1',
      '0',
      '0.5',
      '2.5',
      '1000',
    ]);
  });

  it('keeps non-decimal text as is (no hex, no Infinity, case kept)', () => {
    expect(['0x10', 'Infinity', '1e999', ' Ab ', '1,5', 'NaN'].map(canonicalCell)).toEqual([
      '0x10',
      'Infinity',
      '1e999',
      'Ab',
      '1,5',
      'NaN',
    ]);
  });
});

describe('prepareTabularData: encoding', () => {
  it('scales numerics with the declared constants and one-hot encodes dropping the first level', () => {
    const data = prepareTabularData(
      wardCsv([
        ['63', 'b', '1'],
        ['45.5', 'a', '0'],
        ['55', 'c', '2'],
      ]),
      wardSchema({ split: { testFraction: 1e-12, salt: 'unit-test/split/v1' } }),
    );
    expect(data.featureNames).toEqual(['age', 'ward=b', 'ward=c']);
    expect(data.test.n).toBe(0);
    // (63 − 55)/10 = 0.8, (45.5 − 55)/10 = −0.95, (55 − 55)/10 = 0; ward a → (0, 0), b → (1, 0), c → (0, 1).
    expect(Array.from(data.train.x)).toEqual([0.8, 1, 0, -0.95, 0, 0, 0, 0, 1].map((v) => Math.fround(v)));
    expect(Array.from(data.train.y)).toEqual([1, 0, 1]);
    expect({ rowsRead: data.rowsRead, rowsKept: data.rowsKept, dropped: data.dropped }).toEqual({
      rowsRead: 3,
      rowsKept: 3,
      dropped: [],
    });
  });

  it('uses a numeric value as is without a declared scaling, and matches levels and labels canonically', () => {
    const schema: TabularSchema = {
      columns: ['g', 'v', 'y'],
      features: [
        { name: 'v', type: 'numeric' },
        { name: 'g', type: 'categorical', levels: ['1', '2', '10'] },
      ],
      label: { column: 'y', operator: 'in', values: ['yes', '1'] },
      missing: 'drop-rows',
      split: { testFraction: 1e-12, salt: 'unit-test/split/v1' },
    };
    const data = prepareTabularData('2.0,-3.25,yes\n10,1e2,1.0\n1,0,no\n', schema);
    expect(Array.from(data.train.x)).toEqual([-3.25, 1, 0, 100, 0, 1, 0, 0, 0]);
    expect(Array.from(data.train.y)).toEqual([1, 1, 0]);
  });

  it("drops rows with a missing feature under 'drop-rows', and always rows without a label", () => {
    const text = wardCsv([
      ['63', 'b', '1'],
      ['NA', 'a', '0'],
      ['50', '', '0'],
      ['70', 'a', 'NA'],
    ]);
    const data = prepareTabularData(text, wardSchema());
    expect(data.rowsKept).toBe(1);
    expect(data.dropped).toEqual([
      { reason: 'missing-feature', column: 'age', rows: 1, firstRow: 3 },
      { reason: 'missing-feature', column: 'ward', rows: 1, firstRow: 4 },
      { reason: 'missing-label', column: 'outcome', rows: 1, firstRow: 5 },
    ]);
  });

  it("imputes each feature's declared value (numerics before scaling) under 'impute'", () => {
    const data = prepareTabularData(
      wardCsv([
        ['NA', 'a', '0'],
        ['50', ' ', '1'],
        ['70', 'a', ''],
      ]),
      wardSchema({ missing: 'impute', split: { testFraction: 1e-12, salt: 'unit-test/split/v1' } }),
    );
    // age NA → 60 → (60 − 55)/10 = 0.5; ward missing → c → (0, 1); the unlabelled row is dropped.
    expect(Array.from(data.train.x)).toEqual([0.5, 0, 0, -0.5, 0, 1].map((v) => Math.fround(v)));
    expect(data.dropped).toEqual([{ reason: 'missing-label', column: 'outcome', rows: 1, firstRow: 4 }]);
  });

  it('drops (and counts, without the value) a row whose own content cannot be encoded', () => {
    const huge = String(55 + 10 * MAX_ENCODED_MAGNITUDE * 2);
    const text = wardCsv([
      ['63', 'b', '1'],
      [SECRET, 'a', '0'],
      ['63', SECRET, '0'],
      ['63', 'a', SECRET],
      [huge, 'a', '1'],
      ['0x10', 'a', '1'],
      ['63', 'b', '1'],
    ]).concat(`p9,${SECRET}\n`);
    const data = prepareTabularData(text, wardSchema());
    expect(data.rowsRead).toBe(8);
    expect(data.rowsKept).toBe(2);
    expect(data.dropped).toEqual([
      { reason: 'not-numeric', column: 'age', rows: 2, firstRow: 3 },
      { reason: 'unknown-level', column: 'ward', rows: 1, firstRow: 4 },
      { reason: 'not-numeric', column: 'outcome', rows: 1, firstRow: 5 },
      { reason: 'out-of-range', column: 'age', rows: 1, firstRow: 6 },
      { reason: 'field-count', column: null, rows: 1, firstRow: 9 },
    ]);
    expect(JSON.stringify(data.dropped)).not.toContain(SECRET);
  });

  it('keeps every encoded value finite in float32, however large the raw value', () => {
    const data = prepareTabularData(
      wardCsv([
        ['1e300', 'a', '1'],
        [String(55 + 10 * MAX_ENCODED_MAGNITUDE), 'a', '1'],
      ]),
      wardSchema(),
    );
    expect(data.rowsKept).toBe(1);
    expect([...data.train.x, ...data.test.x].every(Number.isFinite)).toBe(true);
  });
});

describe('prepareTabularData: structural errors fail the file', () => {
  it('names a missing column without echoing data', () => {
    const error = errorOf(() =>
      prepareTabularData(wardCsv([['63', 'a', '1']]), {
        ...wardSchema(),
        label: { column: 'death', operator: '==', threshold: 1 },
      }),
    );
    expect(error.code).toBe(TabularDataErrorCode.MissingColumn);
    expect(error.column).toBe('death');
  });

  it('refuses an empty file that should have a header, and a malformed CSV, by line only', () => {
    expect(errorOf(() => prepareTabularData('', wardSchema())).code).toBe(TabularDataErrorCode.MissingColumn);
    const malformed = errorOf(() =>
      prepareTabularData(`${wardCsv([['63', 'a', '1']])}p1,"${SECRET},a,1\n`, wardSchema()),
    );
    expect(malformed.code).toBe(TabularDataErrorCode.MalformedCsv);
    expect(malformed.message).toContain('line 3');
    expect(malformed.message).not.toContain(SECRET);
  });

  it('refuses a schema the encoder cannot apply, naming the field', () => {
    const schemaError = (schema: TabularSchema) => errorOf(() => prepareTabularData('', schema));
    const noImpute = schemaError(wardSchema({ missing: 'impute', features: [{ name: 'age', type: 'numeric' }] }));
    expect(noImpute.code).toBe(TabularDataErrorCode.Schema);
    expect(noImpute.column).toBe('age');
    expect(
      schemaError(wardSchema({ features: [{ name: 'ward', type: 'categorical', levels: ['1', '1.0'] }] })).message,
    ).toContain('distinct levels');
    expect(
      schemaError(wardSchema({ features: [{ name: 'ward', type: 'categorical', levels: ['a', 'b'], impute: 'z' }] }))
        .message,
    ).toContain('not one of its levels');
    expect(schemaError(wardSchema({ split: { testFraction: 1, salt: 'unit-test/split/v1' } })).message).toContain(
      'schema.split.testFraction',
    );
    expect(schemaError({ ...wardSchema(), standardize: true } as unknown as TabularSchema).message).toContain(
      'standardize',
    );
    expect(schemaError(wardSchema({ columns: ['age', 'outcome'] })).message).toContain("does not list 'ward'");
  });
});

describe('prepareTabularData: the split is a keyed hash of each record', () => {
  const salt = 'unit-test/split/v1';

  it('holds a record out iff HMAC-SHA-256(salt, canonical bytes) / 2^64 < testFraction (hand-built bytes)', () => {
    // Canonical fields: features in schema order, then the label; '63.0' → '63', ' b ' → 'b'; id is not included.
    const message = Buffer.concat([present('63'), present('b'), present('1')]);
    const u = hashFraction(salt, message);
    expect(u).toBeGreaterThan(1e-6);
    expect(u).toBeLessThan(1 - 1e-6);
    const text = 'id,age,ward,outcome\nsomeone,63.0, b ,1\n';
    const heldOut = (testFraction: number) =>
      prepareTabularData(text, wardSchema({ split: { testFraction, salt } })).test.n === 1;
    expect(heldOut(u * (1 + 1e-9))).toBe(true);
    expect(heldOut(u * (1 - 1e-9))).toBe(false);
  });

  it('hashes a missing (imputed) feature as the single byte 0x00', () => {
    const message = Buffer.concat([Buffer.of(0), present('a'), present('0')]);
    const u = hashFraction(salt, message);
    const text = wardCsv([['NA', 'a', '0']]);
    const heldOut = (testFraction: number) =>
      prepareTabularData(text, wardSchema({ missing: 'impute', split: { testFraction, salt } })).test.n === 1;
    expect(heldOut(u * (1 + 1e-9))).toBe(true);
    expect(heldOut(u * (1 - 1e-9))).toBe(false);
  });

  it('holds out close to testFraction of a large file (within 5 binomial standard deviations)', () => {
    const n = 20_000;
    for (const testFraction of [0.1, 0.34, 0.7]) {
      const rows = Array.from({ length: n }, (_, i) => [String(i), 'abc'[i % 3]!, String(i % 2)]);
      const data = prepareTabularData(wardCsv(rows), wardSchema({ split: { testFraction, salt } }));
      expect(data.train.n + data.test.n).toBe(n);
      const sd = Math.sqrt(n * testFraction * (1 - testFraction));
      expect(Math.abs(data.test.n - n * testFraction)).toBeLessThan(5 * sd);
    }
  });

  it('puts identical records (also written differently, or with another id) in the same split', () => {
    const variants = [
      ['63', 'b', '1'],
      ['63.0', ' b', '1.00'],
      ['+63', 'b ', '1e0'],
    ];
    const rows = Array.from({ length: 60 }, (_, i) => variants[i % 3]!);
    for (const testFraction of [0.2, 0.5, 0.8]) {
      const data = prepareTabularData(wardCsv(rows), wardSchema({ split: { testFraction, salt } }));
      expect([data.train.n, data.test.n].sort()).toEqual([0, 60]);
    }
  });

  it('gives a different split under a different salt', () => {
    const rows = Array.from({ length: 2000 }, (_, i) => [String(i), 'abc'[i % 3]!, String(i % 2)]);
    const heldOut = (s: string) => {
      const data = prepareTabularData(
        wardCsv(rows),
        wardSchema({ features: [{ name: 'age', type: 'numeric' }], split: { testFraction: 0.3, salt: s } }),
      );
      // Unscaled age is the row number: the held-out rows by identity.
      return new Set(Array.from({ length: data.test.n }, (_, i) => data.test.x[i]!));
    };
    const a = heldOut(salt);
    const b = heldOut('unit-test/split/v2');
    const moved = [...a].filter((v) => !b.has(v)).length + [...b].filter((v) => !a.has(v)).length;
    // Independent splits disagree on 2·f·(1 − f)·n = 840 records on average.
    expect(moved).toBeGreaterThan(600);
    expect(moved).toBeLessThan(1100);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Property: neighbouring files give neighbouring encoded data sets.

/** Cell texts with no comma, quote or line break. */
const numericCell = fc.oneof(
  fc.integer({ min: -500, max: 500 }).map(String),
  fc.double({ min: -1e4, max: 1e4, noNaN: true, noDefaultInfinity: true }).map(String),
  fc.integer({ min: -50, max: 50 }).map((v) => ` ${v}.0 `),
  fc.constantFrom('1e30', '-1e300', '1e999', '-0', '0x1F', 'abc', '', 'NA', '?', SECRET),
);
const LEVEL_POOL = ['a', 'b', 'c', '1', '2.5', 'x y', 'é', '10'];

interface GeneratedCase {
  readonly schema: TabularSchema;
  readonly header: readonly string[];
  readonly withHeaderRow: boolean;
  readonly cellFor: Record<string, fc.Arbitrary<string>>;
}

const featureArb = (i: number, impute: boolean): fc.Arbitrary<FeatureColumn> =>
  fc.oneof(
    fc
      .record({
        scaled: fc.boolean(),
        center: fc.double({ min: -100, max: 100, noNaN: true }),
        scale: fc.double({ min: 0.01, max: 100, noNaN: true }),
        fill: fc.double({ min: -100, max: 100, noNaN: true }),
      })
      .map(({ scaled, center, scale, fill }): FeatureColumn => ({
        name: `n${i}`,
        type: 'numeric',
        ...(scaled ? { scaling: { center, scale } } : {}),
        ...(impute ? { impute: fill } : {}),
      })),
    fc.shuffledSubarray(LEVEL_POOL, { minLength: 2, maxLength: 4 }).map((levels): FeatureColumn => ({
      name: `c${i}`,
      type: 'categorical',
      levels,
      ...(impute ? { impute: levels[levels.length - 1]! } : {}),
    })),
  );

const caseArb: fc.Arbitrary<GeneratedCase> = fc
  .record({
    impute: fc.boolean(),
    featureCount: fc.integer({ min: 1, max: 4 }),
    thresholdLabel: fc.boolean(),
    threshold: fc.integer({ min: -2, max: 2 }),
    testFraction: fc.double({ min: 0.05, max: 0.95, noNaN: true }),
    salt: fc.string({ minLength: 8, maxLength: 20, unit: fc.constantFrom(...'abcdefXYZ0123/-_.'.split('')) }),
    withHeaderRow: fc.boolean(),
    missingValues: fc.constantFrom(undefined, ['NA'], ['NA', '?']),
  })
  .chain((base) =>
    fc.tuple(...Array.from({ length: base.featureCount }, (_, i) => featureArb(i, base.impute))).chain((features) =>
      fc
        .shuffledSubarray(['id', ...features.map((f) => f.name), 'y'], {
          minLength: features.length + 2,
        })
        .map((header) => ({ base, features, header })),
    ),
  )
  .map(({ base, features, header }) => {
    const schema: TabularSchema = {
      ...(base.withHeaderRow ? {} : { columns: [...header] }),
      ...(base.missingValues ? { missingValues: [...base.missingValues] } : {}),
      features,
      label: base.thresholdLabel
        ? { column: 'y', operator: '>', threshold: base.threshold }
        : { column: 'y', operator: 'in', values: ['yes', '1'] },
      missing: base.impute ? 'impute' : 'drop-rows',
      split: { testFraction: base.testFraction, salt: base.salt },
    };
    const cellFor: Record<string, fc.Arbitrary<string>> = {
      id: fc.string({ maxLength: 6, unit: fc.constantFrom(...'pq0123'.split('')) }),
      y: base.thresholdLabel ? numericCell : fc.constantFrom('yes', 'no', '1', '1.0', '0', '', 'NA', SECRET),
    };
    for (const f of features) {
      cellFor[f.name] =
        f.type === 'numeric'
          ? numericCell
          : fc.oneof(
              fc.constantFrom(...f.levels),
              fc.constantFrom(...f.levels).map((l) => ` ${l} `),
              fc.constantFrom('zzz', '', 'NA', SECRET, '10.0'),
            );
    }
    return { schema, header, withHeaderRow: base.withHeaderRow, cellFor };
  });

/** A row for the case: one cell per header column, sometimes one field too many or too few. */
function rowArb(c: GeneratedCase): fc.Arbitrary<string> {
  return fc
    .tuple(fc.tuple(...c.header.map((name) => c.cellFor[name]!)), fc.integer({ min: 0, max: 19 }))
    .map(([cells, shape]) => (shape === 0 ? cells.slice(1) : shape === 1 ? [...cells, '0'] : cells).join(','));
}

function fileOf(c: GeneratedCase, rows: readonly string[]): string {
  return [...(c.withHeaderRow ? [c.header.join(',')] : []), ...rows].map((line) => `${line}\n`).join('');
}

/** `after` is `before` with at most one record inserted; returns the inserted record or null. */
function insertedRecord(before: string[], after: string[]): string | null {
  if (after.length === before.length) {
    expect(after).toEqual(before);
    return null;
  }
  expect(after.length).toBe(before.length + 1);
  let i = 0;
  while (i < before.length && before[i] === after[i]) i++;
  expect(after.slice(i + 1)).toEqual(before.slice(i));
  return after[i]!;
}

describe('prepareTabularData: neighbouring files (property)', () => {
  it('adding or removing one record changes the encoded data by exactly that record, nothing else', () => {
    fc.assert(
      fc.property(
        caseArb.chain((c) =>
          fc.record({
            c: fc.constant(c),
            rows: fc.array(rowArb(c), { maxLength: 25 }),
            extra: rowArb(c),
            duplicate: fc.boolean(),
            at: fc.nat(),
          }),
        ),
        ({ c, rows, extra, duplicate, at }) => {
          // The extra record: a fresh row (an outlier, a row with missing or invalid cells, a ragged one…) or a
          // duplicate of an existing row; inserted anywhere. `before` and `after` are neighbours either way round.
          const record = duplicate && rows.length > 0 ? rows[at % rows.length]! : extra;
          const position = at % (rows.length + 1);
          const before = prepareTabularData(fileOf(c, rows), c.schema);
          const after = prepareTabularData(
            fileOf(c, [...rows.slice(0, position), record, ...rows.slice(position)]),
            c.schema,
          );
          const alone: PreparedTabularData = prepareTabularData(fileOf(c, [record]), c.schema);
          expect(after.featureNames).toEqual(before.featureNames);
          expect(after.rowsRead).toBe(before.rowsRead + 1);
          const addedTrain = insertedRecord(recordsOf(before.train), recordsOf(after.train));
          const addedTest = insertedRecord(recordsOf(before.test), recordsOf(after.test));
          // The record alone decides whether it is kept, its split and its bits.
          expect(addedTrain === null ? [] : [addedTrain]).toEqual(recordsOf(alone.train));
          expect(addedTest === null ? [] : [addedTest]).toEqual(recordsOf(alone.test));
          expect(after.rowsKept).toBe(before.rowsKept + alone.rowsKept);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is a map over records: the file encodes as the concatenation of its records encoded alone (property)', () => {
    fc.assert(
      fc.property(
        caseArb.chain((c) => fc.record({ c: fc.constant(c), rows: fc.array(rowArb(c), { maxLength: 20 }) })),
        ({ c, rows }) => {
          const whole = prepareTabularData(fileOf(c, rows), c.schema);
          const each = rows.map((row) => prepareTabularData(fileOf(c, [row]), c.schema));
          expect(recordsOf(whole.train)).toEqual(each.flatMap((p) => recordsOf(p.train)));
          expect(recordsOf(whole.test)).toEqual(each.flatMap((p) => recordsOf(p.test)));
          for (const split of [whole.train, whole.test]) {
            expect(Array.from(split.x).every((v) => Math.abs(v) <= MAX_ENCODED_MAGNITUDE)).toBe(true);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
