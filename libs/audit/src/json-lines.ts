import { canonicalJson } from '@tessera/canonical';
import { describeRecordProblem, type AuditRecord } from './audit-record';

/** Why a line of an agent's audit log could not be read. */
export enum LogLineProblemCode {
  /** The line is not JSON. */
  InvalidJson = 'INVALID_JSON',
  /** The line is JSON but not a well-formed AuditRecord. */
  NotARecord = 'NOT_A_RECORD',
  /** An empty line before the end of the file. */
  BlankLine = 'BLANK_LINE',
  /** The last line has no trailing newline: typically a write cut short by a crash. */
  IncompleteLastLine = 'INCOMPLETE_LAST_LINE',
}

export interface LogLineProblem {
  /** 1-based line number. */
  line: number;
  code: LogLineProblemCode;
  message: string;
}

export type ParsedLine = { ok: true; record: AuditRecord } | { ok: false; problem: LogLineProblem };

export interface ParsedLog {
  /** Records of the lines that parsed, in file order (the chain is not checked here: use verifyChain). */
  records: AuditRecord[];
  /** Every bad line, in order; empty when the whole text is well-formed. */
  problems: LogLineProblem[];
}

/**
 * One record as a line of the agent's JSON-lines log (https://jsonlines.org/): its RFC 8785 canonical JSON and "\n".
 * Canonical form makes the file byte-for-byte reproducible from the records.
 */
export function serializeLine(record: AuditRecord): string {
  const problem = describeRecordProblem(record);
  if (problem !== null) throw new TypeError(`cannot serialize audit record: ${problem}`);
  return `${canonicalJson(record)}\n`;
}

/** Parses one line (without its newline); `lineNumber` (1-based) is only used in the error. */
export function parseLine(line: string, lineNumber: number): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return {
      ok: false,
      problem: {
        line: lineNumber,
        code: LogLineProblemCode.InvalidJson,
        message: `line ${lineNumber}: ${(error as Error).message}`,
      },
    };
  }
  const problem = describeRecordProblem(value);
  if (problem !== null) {
    return {
      ok: false,
      problem: { line: lineNumber, code: LogLineProblemCode.NotARecord, message: `line ${lineNumber}: ${problem}` },
    };
  }
  return { ok: true, record: value as AuditRecord };
}

/**
 * Parses a whole JSON-lines log. Lines end with "\n" ("\r\n" is tolerated); the text must end with a newline, and an
 * unterminated last line is reported as INCOMPLETE_LAST_LINE so the agent can tell a torn write from corruption.
 */
export function parseLines(text: string): ParsedLog {
  const records: AuditRecord[] = [];
  const problems: LogLineProblem[] = [];
  if (text.length === 0) return { records, problems };
  const lines = text.split('\n');
  const terminated = lines[lines.length - 1] === '';
  if (terminated) lines.pop();
  lines.forEach((raw, i) => {
    const lineNumber = i + 1;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!terminated && i === lines.length - 1) {
      problems.push({
        line: lineNumber,
        code: LogLineProblemCode.IncompleteLastLine,
        message: `line ${lineNumber}: no trailing newline; the last write may have been cut short`,
      });
      return;
    }
    if (line.trim().length === 0) {
      problems.push({
        line: lineNumber,
        code: LogLineProblemCode.BlankLine,
        message: `line ${lineNumber}: blank line`,
      });
      return;
    }
    const parsed = parseLine(line, lineNumber);
    if (parsed.ok) records.push(parsed.record);
    else problems.push(parsed.problem);
  });
  return { records, problems };
}
