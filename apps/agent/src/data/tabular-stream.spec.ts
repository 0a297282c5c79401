import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  HEART_DISEASE_SCHEMA,
  heartDiseaseDataDirectory,
  prepareTabularData,
  TabularDataErrorCode,
  TabularDataException,
  type TabularSchema,
  type TabularSplit,
} from '@tessera/ml';
import { afterAll, describe, expect, it } from 'vitest';
import { streamTabularData, type TabularFileSplit } from './tabular-stream';

const dir = mkdtempSync(join(tmpdir(), 'tessera-tabular-stream-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function fileWith(text: string): string {
  const path = join(dir, `data-${files++}.csv`);
  writeFileSync(path, text);
  return path;
}

/** Every record of a streamed split, read back in one batch (all indices, in order). */
async function rowsOf(split: TabularFileSplit): Promise<Float32Array> {
  const out = new Float32Array(split.n * split.rowLength);
  await split.readPlain(
    Int32Array.from({ length: split.n }, (_, i) => i),
    out,
  );
  return out;
}

/** The streamed data equals what prepareTabularData makes of the same text: records, labels, splits and counts. */
async function expectSameAsInMemory(text: string, schema: TabularSchema): Promise<void> {
  const expected = prepareTabularData(text, schema);
  const streamed = await streamTabularData(fileWith(text), schema);
  expect(streamed.featureNames).toEqual(expected.featureNames);
  expect(streamed.rowsRead).toBe(expected.rowsRead);
  expect(streamed.rowsKept).toBe(expected.rowsKept);
  expect(streamed.dropped).toEqual(expected.dropped);
  const compare = async (got: TabularFileSplit, want: TabularSplit) => {
    expect(got.n).toBe(want.n);
    expect(Array.from(got.y)).toEqual(Array.from(want.y));
    expect(got.y.constructor).toBe(want.y.constructor);
    expect(Array.from(await rowsOf(got))).toEqual(Array.from(want.x));
  };
  await compare(streamed.train, expected.train);
  await compare(streamed.test, expected.test);
}

const wardSchema: TabularSchema = {
  missingValues: ['NA'],
  features: [
    { name: 'age', type: 'numeric', scaling: { center: 55, scale: 10 } },
    { name: 'ward', type: 'categorical', levels: ['a', 'b', 'c'] },
  ],
  label: { column: 'outcome', operator: 'class', classes: ['0', '1', '2'] },
  missing: 'drop-rows',
  split: { testFraction: 0.3, salt: 'unit-test/stream/v1' },
};

describe('tabular data streamed from disk', () => {
  it('gives the records, labels, splits and drop counts of the in-memory reader on the four heart-disease files', async () => {
    for (const name of ['cleveland', 'hungarian', 'switzerland', 'va']) {
      const text = readFileSync(join(heartDiseaseDataDirectory(), `processed.${name}.data`), 'utf8');
      await expectSameAsInMemory(text, HEART_DISEASE_SCHEMA);
    }
  });

  it('reads CRLF, blank lines, quoted fields over two lines, a last row without newline and dropped rows alike', async () => {
    const text = [
      'id,age,ward,"outcome"',
      'p0,61,a,1',
      '',
      'p1,47, b ,2\r',
      'p2,"53",c,0',
      'p3,NA,a,1', // missing feature: dropped
      'p4,sixty,a,1', // not a number: dropped
      'p5,50,a', // field count: dropped
      '"p6 with a note',
      'over two lines",58,b,1',
      ...Array.from({ length: 40 }, (_, i) => `q${i},${40 + i},${'abc'[i % 3]},${i % 3}`),
      'p7,70,c,9', // not a declared class: dropped
      'p8,71,c,2',
    ].join('\n');
    await expectSameAsInMemory(text, wardSchema);
  });

  it('reads a file whose schema declares the columns (no header row)', async () => {
    const schema = { ...wardSchema, columns: ['id', 'age', 'ward', 'outcome'] };
    const text = Array.from({ length: 30 }, (_, i) => `r${i},${30 + i},${'abc'[i % 3]},${(i * 7) % 3}`).join('\n');
    await expectSameAsInMemory(text, schema);
  });

  it('reads any batch of indices, in the order asked', async () => {
    const text = ['id,age,ward,outcome', ...Array.from({ length: 50 }, (_, i) => `r${i},${i},a,${i % 3}`)].join('\n');
    const streamed = await streamTabularData(fileWith(text), wardSchema);
    const all = await rowsOf(streamed.train);
    const indices = [streamed.train.n - 1, 0, 3, 3];
    const out = new Float32Array(indices.length * streamed.train.rowLength);
    await streamed.train.readRows(indices, out);
    const width = streamed.train.rowLength;
    indices.forEach((row, k) =>
      expect(Array.from(out.subarray(k * width, (k + 1) * width))).toEqual(
        Array.from(all.subarray(row * width, (row + 1) * width)),
      ),
    );
  });

  it('fails on the file structure only, naming the column or line and never a value', async () => {
    const missing = await streamTabularData(fileWith('id,age,outcome\np0,61,1\n'), wardSchema).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(TabularDataException);
    expect((missing as TabularDataException).code).toBe(TabularDataErrorCode.MissingColumn);
    expect((missing as TabularDataException).column).toBe('ward');

    const unterminated = await streamTabularData(
      fileWith('id,age,ward,outcome\np0,61,a,1\n"PATIENT-7731,62,b,1\n'),
      wardSchema,
    ).catch((e: unknown) => e);
    expect(unterminated).toBeInstanceOf(TabularDataException);
    expect((unterminated as TabularDataException).code).toBe(TabularDataErrorCode.MalformedCsv);
    expect((unterminated as Error).message).not.toContain('PATIENT-7731');

    const empty = await streamTabularData(fileWith(''), wardSchema).catch((e: unknown) => e);
    expect((empty as TabularDataException).code).toBe(TabularDataErrorCode.MissingColumn);
  });

  it('refuses to read a batch from a file that changed after the pass', async () => {
    const path = fileWith(
      ['id,age,ward,outcome', ...Array.from({ length: 20 }, (_, i) => `r${i},${i},a,1`)].join('\n'),
    );
    const streamed = await streamTabularData(path, wardSchema);
    writeFileSync(path, readFileSync(path, 'utf8').replace('r0,0', 'r0,9'));
    utimesSync(path, new Date(), new Date(Date.now() + 5_000));
    await expect(rowsOf(streamed.train)).rejects.toThrow(/no longer reads as it did when the study began/);
  });
});
