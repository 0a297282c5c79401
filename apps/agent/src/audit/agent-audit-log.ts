import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import {
  AgentAuditAction,
  appendRecord,
  LogLineProblemCode,
  parseLines,
  serializeLine,
  sha256Hex,
  verifyChain,
  type AuditActor,
  type AuditRecord,
  type AuditSubject,
  type JsonObject,
} from '@tessera/audit';
import { AgentError, AgentErrorCode } from '../agent.error';

/** The log's file name in the state directory. */
export const AUDIT_LOG_FILE = 'audit.log.jsonl';

/** How long an append waits for another agent process (a CLI command beside the daemon) to finish its own. */
const LOCK_WAIT_MS = 10_000;
/** A lock file older than this was left by a crashed process: appends take seconds at most. */
const STALE_LOCK_MS = 60_000;
/** The head is found by reading the file's end in chunks of this size (records are a few hundred bytes). */
const TAIL_CHUNK = 64 * 1024;

export interface AuditLogCheck {
  ok: boolean;
  file: string;
  records: number;
  headSeq: number;
  headHash: string | null;
  /** A torn last line (a write cut by a crash): not part of the chain; cut off at the agent's next start. */
  tornLastLine: boolean;
  /** The first problem (a bad line or the chain's first break), or null. */
  problem: { line?: number; seq?: number; code: string; message: string } | null;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? '';
}

/** Flushes a directory so a newly created file's name survives a power loss where the platform allows it. */
function fsyncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch (err) {
    if (['EISDIR', 'EPERM', 'EINVAL', 'EACCES'].includes(errnoOf(err))) return;
    throw err;
  }
  try {
    fsyncSync(fd);
  } catch (err) {
    if (!['EISDIR', 'EPERM', 'EINVAL', 'EACCES'].includes(errnoOf(err))) throw err;
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads the complete lines at the end of the file: the last record, and whether the file ends in a torn line.
 * Returns the byte offset where the torn part starts (the file size when there is none).
 */
function readTail(fd: number): { last: AuditRecord | null; tornAt: number; size: number } {
  const size = fstatSync(fd).size;
  if (size === 0) return { last: null, tornAt: 0, size };
  let length = Math.min(size, TAIL_CHUNK);
  for (;;) {
    // Byte offsets, not string indices: records may hold non-ASCII text (silo names).
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const end = buffer.lastIndexOf(0x0a);
    const start = end <= 0 ? -1 : buffer.lastIndexOf(0x0a, end - 1);
    if (end >= 0 && (start >= 0 || length === size)) {
      const tornAt = size - length + end + 1;
      const parsed = parseLines(buffer.subarray(start + 1, end + 1).toString('utf8'));
      if (parsed.problems.length > 0 || parsed.records.length !== 1) {
        throw new AgentError(
          AgentErrorCode.STATE_CORRUPT,
          `the agent's audit log's last complete line is not a record: ${parsed.problems[0]?.message ?? 'unreadable'}`,
        );
      }
      return { last: parsed.records[0]!, tornAt, size };
    }
    if (length === size) return { last: null, tornAt: 0, size }; // one torn line and nothing else
    length = Math.min(size, length * 4);
  }
}

/**
 * The agent's own tamper-evident log (docs/audit.md, "The agent's log"): a hash chain of @tessera/audit records, one
 * canonical JSON line each in `audit.log.jsonl` of the state directory. Each append is written and fsync'd before
 * the call returns; appends from several agent processes (the daemon and a steward's CLI command) are serialized
 * by a lock file. The whole chain is verified when the log is opened: a broken chain stops the agent.
 */
export class AgentAuditLog {
  readonly file: string;
  private readonly lockFile: string;

  private constructor(
    stateRoot: string,
    private readonly actor: AuditActor,
    private readonly clock: () => Date,
  ) {
    this.file = join(stateRoot, AUDIT_LOG_FILE);
    this.lockFile = `${this.file}.lock`;
  }

  /**
   * Opens (or starts) the log and verifies it end to end. A torn last line is cut off and the cut recorded; any
   * other problem throws AgentError STATE_CORRUPT naming the line or seq, so the agent stops before acting.
   */
  static open(stateRoot: string, actor: AuditActor, clock: () => Date = () => new Date()): AgentAuditLog {
    const log = new AgentAuditLog(stateRoot, actor, clock);
    const check = log.check();
    if (!check.ok) {
      const where = check.problem?.line !== undefined ? `line ${check.problem.line}` : `seq ${check.problem?.seq}`;
      throw new AgentError(
        AgentErrorCode.STATE_CORRUPT,
        `The agent's audit log ${log.file} is broken at ${where} (${check.problem?.code}): ${check.problem?.message}. ` +
          'The agent stops rather than extend a chain it cannot vouch for. Keep the file for investigation ' +
          '(tessera-agent audit verify shows the break), move it aside, and restart to begin a new log.',
      );
    }
    if (check.records === 0) {
      log.append(
        AgentAuditAction.LogStarted,
        {},
        { siloId: actor.id, ...(actor.name ? { siloName: actor.name } : {}) },
      );
    } else if (check.tornLastLine) {
      log.locked(() => log.withFile(() => undefined));
    }
    return log;
  }

  /** Verifies a log without opening it for appends and without changing it (`tessera-agent audit verify`). */
  static inspect(stateRoot: string, actor: AuditActor): AuditLogCheck {
    return new AgentAuditLog(stateRoot, actor, () => new Date()).check();
  }

  /** Reads and verifies the whole file without changing it. */
  check(): AuditLogCheck {
    const base = { file: this.file, tornLastLine: false };
    if (!existsSync(this.file)) {
      return { ...base, ok: true, records: 0, headSeq: 0, headHash: null, problem: null };
    }
    const parsed = parseLines(readFileSync(this.file, 'utf8'));
    const torn = parsed.problems.find((p) => p.code === LogLineProblemCode.IncompleteLastLine);
    const bad = parsed.problems.find((p) => p.code !== LogLineProblemCode.IncompleteLastLine);
    const chain = verifyChain(parsed.records);
    const head = parsed.records.at(-1);
    const problem =
      bad !== undefined
        ? { line: bad.line, code: bad.code, message: bad.message }
        : !chain.ok
          ? { seq: chain.brokenAt, code: chain.reason, message: chain.message }
          : null;
    return {
      ...base,
      ok: problem === null,
      records: parsed.records.length,
      headSeq: head?.seq ?? 0,
      headHash: head?.hash ?? null,
      tornLastLine: torn !== undefined,
      problem,
    };
  }

  /** Every record, in order (for the auditor's export). */
  records(): AuditRecord[] {
    if (!existsSync(this.file)) return [];
    return parseLines(readFileSync(this.file, 'utf8')).records;
  }

  /** Appends one record and returns it once it is on disk. Never patient data: counts, hashes, parameters. */
  append(action: AgentAuditAction, subject: AuditSubject, details: JsonObject): AuditRecord {
    return this.locked(() => this.withFile((fd, last) => this.write(fd, last, action, subject, details)));
  }

  /**
   * Opens the file for appending, cuts off a torn last line (recording the cut), and hands the head to `fn`. A torn
   * line is a write a crash cut short: it has no newline, was never fsync'd as a whole, and is not part of the chain.
   */
  private withFile<T>(fn: (fd: number, last: AuditRecord | null) => T): T {
    const fd = openSync(this.file, 'a+', 0o600);
    try {
      const created = fstatSync(fd).size === 0;
      const tail = readTail(fd);
      let last = tail.last;
      if (tail.tornAt < tail.size) {
        const torn = Buffer.alloc(tail.size - tail.tornAt);
        readSync(fd, torn, 0, torn.length, tail.tornAt);
        ftruncateSync(fd, tail.tornAt);
        last = this.write(
          fd,
          last,
          AgentAuditAction.TornLineDiscarded,
          {},
          {
            bytes: torn.length,
            sha256: sha256Hex(torn),
          },
        );
      }
      const result = fn(fd, last);
      if (created) fsyncDirectory(dirname(this.file));
      return result;
    } finally {
      closeSync(fd);
    }
  }

  private write(
    fd: number,
    prev: AuditRecord | null,
    action: AgentAuditAction,
    subject: AuditSubject,
    details: JsonObject,
  ): AuditRecord {
    const record = appendRecord(prev, {
      time: this.clock().toISOString(),
      actor: this.actor,
      action,
      subject,
      details,
    });
    writeSync(fd, serializeLine(record));
    fsyncSync(fd);
    return record;
  }

  private locked<T>(fn: () => T): T {
    const deadline = Date.now() + LOCK_WAIT_MS;
    let fd: number | undefined;
    while (fd === undefined) {
      try {
        fd = openSync(this.lockFile, 'wx', 0o600);
      } catch (err) {
        if (errnoOf(err) !== 'EEXIST') throw err;
        this.removeStaleLock();
        if (Date.now() > deadline) {
          throw new AgentError(
            AgentErrorCode.STATE_CORRUPT,
            `The agent's audit log is locked by another process (${this.lockFile}); if none runs, remove the file.`,
          );
        }
        sleepSync(20);
      }
    }
    try {
      writeSync(fd, `${process.pid}\n`);
      return fn();
    } finally {
      closeSync(fd);
      rmSync(this.lockFile, { force: true });
    }
  }

  private removeStaleLock(): void {
    try {
      if (Date.now() - statSync(this.lockFile).mtimeMs > STALE_LOCK_MS) rmSync(this.lockFile, { force: true });
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err; // released meanwhile
    }
  }
}
