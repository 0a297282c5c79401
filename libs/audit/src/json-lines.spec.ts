import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { appendRecord, type AuditRecord } from './audit-record';
import { verifyChain } from './chain-verifier';
import { LogLineProblemCode, parseLine, parseLines, serializeLine } from './json-lines';
import { buildChain, recordInput } from './audit-fixtures.test-util';

const CHAIN = buildChain(5);
const TEXT = CHAIN.map(serializeLine).join('');

describe('serializeLine', () => {
  it('writes one canonical JSON line per record', () => {
    const line = serializeLine(CHAIN[0]!);
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    expect(line.startsWith('{"action":')).toBe(true);
    expect(JSON.parse(line)).toEqual(CHAIN[0]);
  });

  it('refuses a malformed record', () => {
    expect(() => serializeLine({ ...CHAIN[0]!, seq: 0 })).toThrow(/seq must be/);
  });
});

describe('parseLines', () => {
  it('round-trips a log and the chain still verifies', () => {
    const { records, problems } = parseLines(TEXT);
    expect(problems).toEqual([]);
    expect(records).toEqual(CHAIN);
    expect(verifyChain(records).ok).toBe(true);
  });

  it('round-trips any appended log (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }), {
          maxLength: 6,
        }),
        (detailsList) => {
          const records: AuditRecord[] = [];
          detailsList.forEach((details, i) =>
            records.push(appendRecord(records.at(-1) ?? null, { ...recordInput(i), details: details as never })),
          );
          const parsed = parseLines(records.map(serializeLine).join(''));
          expect(parsed.problems).toEqual([]);
          expect(verifyChain(parsed.records).ok).toBe(true);
          expect(parsed.records.map((r) => r.hash)).toEqual(records.map((r) => r.hash));
        },
      ),
      { numRuns: 50 },
    );
  });

  it('accepts an empty log and CRLF line ends', () => {
    expect(parseLines('')).toEqual({ records: [], problems: [] });
    expect(parseLines(TEXT.replaceAll('\n', '\r\n')).records).toEqual(CHAIN);
  });

  it('names the line of invalid JSON, non-records and blank lines', () => {
    const lines = TEXT.split('\n');
    lines[1] = '{"seq": 2,';
    lines[3] = '{"hello":"world"}';
    lines.splice(4, 0, '   ');
    const { records, problems } = parseLines(lines.join('\n'));
    expect(problems.map((p) => [p.line, p.code])).toEqual([
      [2, LogLineProblemCode.InvalidJson],
      [4, LogLineProblemCode.NotARecord],
      [5, LogLineProblemCode.BlankLine],
    ]);
    expect(problems[0]!.message).toMatch(/^line 2: /);
    expect(problems[1]!.message).toMatch(/line 4: unknown field "hello"/);
    expect(records.map((r) => r.seq)).toEqual([1, 3, 5]);
  });

  it('reports an unterminated last line as a torn write', () => {
    const torn = TEXT + serializeLine(appendRecord(CHAIN[4]!, recordInput(5))).slice(0, 30);
    const { records, problems } = parseLines(torn);
    expect(records).toEqual(CHAIN);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ line: 6, code: LogLineProblemCode.IncompleteLastLine });
    expect(problems[0]?.message).toMatch(/line 6: no trailing newline/);
  });

  it('parses a single line for streaming readers', () => {
    expect(parseLine(serializeLine(CHAIN[2]!).trimEnd(), 3)).toEqual({ ok: true, record: CHAIN[2] });
    expect(parseLine('nope', 9)).toMatchObject({
      ok: false,
      problem: { line: 9, code: LogLineProblemCode.InvalidJson },
    });
  });
});
