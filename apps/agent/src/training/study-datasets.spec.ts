import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodedFeatureCount, logisticRegressionNetwork, type StudyPlan } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { buildPlan, readHeartDisease } from '../testing/study.test-util';
import { StudyDatasets } from './study-datasets';

/** A StudyDatasets over `text`, recording its local log and how often the file was read. */
function datasetsOver(text: string) {
  const lines: string[] = [];
  const reads = { count: 0 };
  const datasets = new StudyDatasets(
    () => {
      reads.count++;
      return text;
    },
    (line) => lines.push(line),
  );
  return { datasets, lines, reads };
}

describe('StudyDatasets', () => {
  const schema = buildPlan().schema;

  it('prepares once per study and plan, and logs exact counts locally (never a value)', () => {
    const text = readHeartDisease('processed.hungarian.data');
    const { datasets, lines, reads } = datasetsOver(text);
    const first = datasets.forStudy('s1', 'h1', schema);
    expect(first.ok).toBe(true);
    expect(datasets.forStudy('s1', 'h1', schema)).toBe(first);
    expect(reads.count).toBe(1);
    if (!first.ok) return;
    const { data } = first;
    expect(lines[0]).toBe(
      `study s1: data prepared: ${data.rowsRead} rows read, ${data.rowsKept} kept (${data.train.n} training, ${data.test.n} held out for testing); these counts stay in this silo`,
    );
    // Hungary: 294 rows, 261 kept (FLamby); the rest hold '?' in a feature. Each drop line has a count, a column
    // name and a line number, and nothing else (the whole line is matched).
    expect(data.rowsRead - data.rowsKept).toBe(33);
    expect(
      lines
        .slice(1)
        .every((l) =>
          /^study s1: dropped \d+ rows? with a missing value in column '\w+' \(first on line \d+\)$/.test(l),
        ),
    ).toBe(true);
    const dropped = lines.slice(1).reduce((sum, l) => sum + Number(/dropped (\d+)/.exec(l)![1]), 0);
    expect(dropped).toBe(33);
  });

  it('drops a bad row instead of failing the study', () => {
    const text = readHeartDisease().replace(/^63\.0,1\.0,1\.0/, 'SECRET-VALUE,1.0,1.0');
    const { datasets, lines } = datasetsOver(text);
    const result = datasets.forStudy('s1', 'h1', schema);
    expect(result.ok).toBe(true);
    expect(lines).toContain(
      "study s1: dropped 1 row with a value that is not a number in column 'age' (first on line 1)",
    );
    expect(lines.join('\n')).not.toContain('SECRET-VALUE');
  });

  it('fails with DATA_SCHEMA_MISMATCH, without any count, when no row gives a training record', () => {
    const { datasets, lines } = datasetsOver('a,b\n1,2\n3,4\n');
    const result = datasets.forStudy('s1', 'h1', schema);
    expect(result).toMatchObject({ ok: false, problem: { code: 'DATA_SCHEMA_MISMATCH' } });
    if (result.ok) return;
    expect(result.problem.message).not.toMatch(/\d/);
    // The local log says why: every row (the file has no header under this schema) has the wrong number of fields.
    expect(lines).toContain('study s1: dropped 3 rows with a wrong number of fields (first on line 1)');
  });

  it('names a missing column, and reports an unparseable file as unreadable', () => {
    const { columns: _headerless, ...withHeader } = schema;
    const missing = datasetsOver('age,sex\n1,2\n').datasets.forStudy('s1', 'h1', withHeader);
    expect(missing).toMatchObject({ ok: false, problem: { code: 'DATA_SCHEMA_MISMATCH' } });
    if (!missing.ok) expect(missing.problem.message).toContain("'trestbps'");
    const malformed = datasetsOver('1,"2\n').datasets.forStudy('s1', 'h1', schema);
    expect(malformed).toMatchObject({ ok: false, problem: { code: 'DATA_UNREADABLE' } });
    if (!malformed.ok) expect(malformed.problem.message).toContain('unterminated quote opened on line 1');
  });

  it("reads a network plan's tabular file from disk beyond the memory budget (same records as in memory), registry plans whole", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-datasets-'));
    try {
      const text = readHeartDisease('processed.hungarian.data');
      const file = join(dir, 'data.csv');
      writeFileSync(file, text);
      const registry = buildPlan();
      const network: StudyPlan = {
        ...registry,
        model: { kind: 'network', network: logisticRegressionNetwork(encodedFeatureCount(registry.schema)) },
      };
      const lines: string[] = [];
      // A memory budget of 0 bytes: the file is read from disk whatever its size.
      const datasets = new StudyDatasets(
        () => text,
        (line) => lines.push(line),
        file,
        undefined,
        0,
      );
      const streamed = await datasets.forPlan('s1', 'h1', network);
      const whole = await datasets.forPlan('s2', 'h2', registry);
      expect(streamed.ok && whole.ok).toBe(true);
      if (!streamed.ok || !whole.ok) return;
      expect(streamed.data.train.x).not.toBeInstanceOf(Float32Array);
      expect(whole.data.train.x).toBeInstanceOf(Float32Array);
      expect(lines.find((l) => l.startsWith('study s1: data prepared'))).toContain('read from disk batch by batch');
      const source = streamed.data.train.x as Exclude<typeof streamed.data.train.x, Float32Array>;
      const rows = new Float32Array((whole.data.train.x as Float32Array).length);
      await source.readPlain(
        Int32Array.from({ length: streamed.data.train.n }, (_, i) => i),
        rows,
      );
      expect(Array.from(rows)).toEqual(Array.from(whole.data.train.x as Float32Array));
      expect(Array.from(streamed.data.test.y)).toEqual(Array.from(whole.data.test.y));
      expect(await datasets.forPlan('s1', 'h1', network)).toBe(streamed);
      // Within the default budget (64 MiB) the same plan reads the file into memory.
      const inMemory = await new StudyDatasets(
        () => text,
        () => undefined,
        file,
      ).forPlan('s1', 'h1', network);
      expect(inMemory.ok && inMemory.data.train.x instanceof Float32Array).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
