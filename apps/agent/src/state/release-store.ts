import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import {
  decodeUpdateFrame,
  EvaluationReport,
  readFramePrefix,
  UpdateFrameError,
  type UpdateHeader,
} from '@tessera/protocol';
import { z } from 'zod';
import { AgentError, AgentErrorCode } from '../agent.error';
import { writeFileAtomic } from './atomic-file.util';

/** A training release: the framed update exactly as it was first framed, and its header. */
export interface TrainingRelease {
  file: string;
  frame: Uint8Array;
  header: UpdateHeader;
}

/** An evaluation release: the report exactly as it was first sent (only `attempt` may be re-stamped). */
export interface EvaluationRelease {
  file: string;
  report: EvaluationReport;
}

const EvaluationReleaseFile = z
  .object({ format: z.literal('tessera.evaluation-release/1'), studyId: z.string().uuid(), report: EvaluationReport })
  .strict();

/**
 * What became of one sending of a release that no receipt covers: the hub acknowledged it ('reported', evaluation
 * reports, which carry no receipt), the round closed without it ('round-closed'), or the hub refuses it for good
 * ('refused', with the hub's code). A settled sending is not re-sent by the agent on its own.
 */
export const ReleaseSettlement = z
  .object({
    outcome: z.enum(['reported', 'round-closed', 'refused']),
    hubCode: z.string().nullable(),
    message: z.string(),
    settledAt: z.string().datetime(),
  })
  .strict();
export type ReleaseSettlement = z.infer<typeof ReleaseSettlement>;

/** One sending of a release: the header `attempt` it carried (the payload is the same), and its settlement. */
export interface ReleaseSending {
  attempt: number;
  settled: ReleaseSettlement | null;
}

const ReleaseDeliveryFile = z
  .object({
    format: z.literal('tessera.release-delivery/1'),
    sent: z
      .array(z.object({ attempt: z.number().int().positive(), settled: ReleaseSettlement.nullable() }).strict())
      .max(1000),
  })
  .strict();

const SHA256_HEX = /^[0-9a-f]{64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TRAINING_FILE = /^round-(\d+)-([0-9a-f]{64})\.tsu$/;
const EVALUATION_FILE = /^evaluation-(\d+)-([0-9a-f]{64})\.json$/;

/** Flushes a directory entry (a newly created directory or file name) where the platform allows it. */
function fsyncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch (err) {
    if (['EISDIR', 'EPERM', 'EINVAL', 'EACCES'].includes((err as NodeJS.ErrnoException).code ?? '')) return;
    throw err;
  }
  try {
    fsyncSync(fd);
  } catch (err) {
    if (!['EISDIR', 'EPERM', 'EINVAL', 'EACCES'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    closeSync(fd);
  }
}

/**
 * Everything this silo has released to the hub, or is about to release, `releases/<studyId>/` in the state directory:
 * `round-<r>-<baseModelHash>.tsu` (a framed model update) and `evaluation-<r>-<modelHash>.json` (an evaluation
 * report). A release is written and flushed (file and directory) after the privacy ledger has charged it and before
 * its first byte leaves, so every retry, a restart and a later attempt of the same round on the same model send
 * the very same noisy numbers: one charge, one release (docs/silo-guide.md, "Releases"). Files are replaced only
 * by a fresh release of another plan version, which is itself a new charge.
 *
 * Beside a release, `<name>.delivery.json` records each re-stamped attempt it was sent as (before it leaves) and what
 * became of a sending that no receipt covers (ReleaseSettlement), so a restarted agent knows which releases it still
 * has to ask the hub about (run/release-reconciler.ts).
 */
export class ReleaseStore {
  readonly root: string;

  constructor(stateRoot: string) {
    this.root = join(stateRoot, 'releases');
  }

  trainingFile(studyId: string, round: number, baseModelHash: string): string {
    return join(this.studyDir(studyId), `round-${integer(round, 'round')}-${hash(baseModelHash)}.tsu`);
  }

  evaluationFile(studyId: string, round: number, modelHash: string): string {
    return join(this.studyDir(studyId), `evaluation-${integer(round, 'round')}-${hash(modelHash)}.json`);
  }

  /** The update released for this round on this base model, or null. */
  training(studyId: string, round: number, baseModelHash: string): TrainingRelease | null {
    const file = this.trainingFile(studyId, round, baseModelHash);
    if (!existsSync(file)) return null;
    const frame = new Uint8Array(readFileSync(file));
    try {
      const { header } = decodeUpdateFrame(frame);
      if (header.studyId !== studyId || header.round !== round || header.baseModelHash !== baseModelHash) {
        throw new UpdateFrameError('its header names another study, round or base model than its file name');
      }
      return { file, frame, header };
    } catch (err) {
      if (!(err instanceof UpdateFrameError)) throw err;
      throw corrupt(file, err.message);
    }
  }

  /** Persists a framed update before its first upload (file and directory flushed). */
  saveTraining(frame: Uint8Array): TrainingRelease {
    const { header } = decodeUpdateFrame(frame);
    const file = this.trainingFile(header.studyId, header.round, header.baseModelHash);
    this.ensureStudyDir(header.studyId);
    writeFileAtomic(file, frame, 0o600);
    return { file, frame, header };
  }

  /** The evaluation report released for this round's model, or null. */
  evaluation(studyId: string, round: number, modelHash: string): EvaluationRelease | null {
    const file = this.evaluationFile(studyId, round, modelHash);
    if (!existsSync(file)) return null;
    let parsed;
    try {
      parsed = EvaluationReleaseFile.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    } catch (err) {
      throw corrupt(file, (err as Error).message);
    }
    if (!parsed.success) throw corrupt(file, parsed.error.issues[0]?.message ?? 'invalid');
    const { report } = parsed.data;
    if (parsed.data.studyId !== studyId || report.round !== round || report.modelHash !== modelHash) {
      throw corrupt(file, 'it names another study, round or model than its file name');
    }
    return { file, report };
  }

  saveEvaluation(studyId: string, report: EvaluationReport): EvaluationRelease {
    const file = this.evaluationFile(studyId, report.round, report.modelHash);
    this.ensureStudyDir(studyId);
    const content = { format: 'tessera.evaluation-release/1', studyId, report };
    writeFileAtomic(file, JSON.stringify(content, null, 2) + '\n', 0o600);
    return { file, report };
  }

  /**
   * The sendings of a release (its file) that are on record: the attempt the release was made for is always one of
   * them (it is written before its first byte leaves), each re-stamped attempt recorded before it was sent, and the
   * settlement of each that no receipt covers. Oldest attempt first.
   */
  sendings(releaseFile: string, madeForAttempt: number): ReleaseSending[] {
    const recorded = this.readDelivery(releaseFile);
    const out = new Map<number, ReleaseSending>([[madeForAttempt, { attempt: madeForAttempt, settled: null }]]);
    for (const s of recorded) out.set(s.attempt, s);
    return [...out.values()].sort((a, b) => a.attempt - b.attempt);
  }

  /**
   * Records, before it leaves, that the release goes out (again) as `attempt`: a sending nobody can forget after a
   * crash, and one whose earlier settlement no longer holds (its answer now decides). Writes nothing when the record
   * already says so.
   */
  recordSending(releaseFile: string, madeForAttempt: number, attempt: number): void {
    integer(attempt, 'attempt');
    const recorded = this.readDelivery(releaseFile);
    const existing = recorded.find((s) => s.attempt === attempt);
    if (existing ? existing.settled === null : attempt === madeForAttempt) return;
    const sent = recorded.filter((s) => s.attempt !== attempt);
    sent.push({ attempt, settled: null });
    this.writeDelivery(releaseFile, sent);
  }

  /** Records what became of the sending `attempt` of a release (flushed): it is not re-sent on the agent's own. */
  settle(releaseFile: string, attempt: number, settlement: ReleaseSettlement): void {
    integer(attempt, 'attempt');
    const sent = this.readDelivery(releaseFile).filter((s) => s.attempt !== attempt);
    sent.push({ attempt, settled: ReleaseSettlement.parse(settlement) });
    this.writeDelivery(releaseFile, sent);
  }

  /** Studies with a releases directory (their ids), in name order. */
  studies(): string[] {
    if (!existsSync(this.root)) return [];
    return readdirSync(this.root)
      .filter((name) => UUID.test(name))
      .sort();
  }

  /** Training releases on file for a study (distinct round and base model). */
  trainingReleases(studyId: string): TrainingRelease[] {
    return this.list(studyId, TRAINING_FILE).map(([round, model]) => this.training(studyId, round, model)!);
  }

  /** Evaluation reports on file for a study (distinct round and model). */
  evaluationReleases(studyId: string): EvaluationRelease[] {
    return this.list(studyId, EVALUATION_FILE).map(([round, model]) => this.evaluation(studyId, round, model)!);
  }

  /** `<release file without its extension>.delivery.json`, beside the release (never matched as a release). */
  private deliveryFile(releaseFile: string): string {
    const dir = dirname(releaseFile);
    const name = basename(releaseFile);
    if (dirname(dir) !== this.root || !(TRAINING_FILE.test(name) || EVALUATION_FILE.test(name))) {
      throw new RangeError(`not a release file of this store: ${releaseFile}`);
    }
    return join(dir, `${name.replace(/\.(tsu|json)$/, '')}.delivery.json`);
  }

  private readDelivery(releaseFile: string): ReleaseSending[] {
    const file = this.deliveryFile(releaseFile);
    if (!existsSync(file)) return [];
    let parsed;
    try {
      parsed = ReleaseDeliveryFile.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    } catch (err) {
      throw corruptDelivery(file, (err as Error).message);
    }
    if (!parsed.success) throw corruptDelivery(file, parsed.error.issues[0]?.message ?? 'invalid');
    return parsed.data.sent;
  }

  private writeDelivery(releaseFile: string, sent: ReleaseSending[]): void {
    const content = { format: 'tessera.release-delivery/1', sent: [...sent].sort((a, b) => a.attempt - b.attempt) };
    writeFileAtomic(this.deliveryFile(releaseFile), JSON.stringify(content, null, 2) + '\n', 0o600);
  }

  private list(studyId: string, pattern: RegExp): [number, string][] {
    const dir = this.studyDir(studyId);
    if (!existsSync(dir)) return [];
    const out: [number, string][] = [];
    for (const name of readdirSync(dir).sort()) {
      const m = pattern.exec(name);
      if (m) out.push([Number(m[1]), m[2]!]);
    }
    return out;
  }

  private studyDir(studyId: string): string {
    // A uuid, checked, so the path cannot leave the releases directory.
    if (!z.string().uuid().safeParse(studyId).success) {
      throw new AgentError(AgentErrorCode.STATE_CORRUPT, `not a study id: ${JSON.stringify(studyId.slice(0, 64))}`);
    }
    return join(this.root, studyId);
  }

  private ensureStudyDir(studyId: string): void {
    const dir = this.studyDir(studyId);
    if (existsSync(dir)) return;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // The new directories' names must survive a power loss as much as the file inside them.
    fsyncDirectory(this.root);
    fsyncDirectory(dirname(this.root));
  }
}

/** Re-stamps a persisted frame for another attempt of the same round: same payload bytes, header `attempt` only. */
export function reframeForAttempt(frame: Uint8Array, attempt: number): Uint8Array {
  const { header } = decodeUpdateFrame(frame);
  if (header.attempt === attempt) return frame;
  const headerLength = readFramePrefix(frame.subarray(0, 8));
  const headerBytes = Buffer.from(JSON.stringify({ ...header, attempt: integer(attempt, 'attempt') }), 'utf8');
  const prefix = Buffer.from(frame.subarray(0, 8));
  prefix.writeUInt32LE(headerBytes.length, 4);
  return Buffer.concat([prefix, headerBytes, frame.subarray(8 + headerLength)]);
}

function integer(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${what} must be a positive integer`);
  return value;
}

function hash(value: string): string {
  if (!SHA256_HEX.test(value)) throw new RangeError('a model hash must be 64 lowercase hex digits');
  return value;
}

function corrupt(file: string, reason: string): AgentError {
  return new AgentError(
    AgentErrorCode.STATE_CORRUPT,
    `the release file ${file} is unreadable (${reason}); the agent will not re-send or replace a release it cannot vouch for. Keep the file for investigation and move it aside only if you accept that the round may be trained again (a new privacy charge).`,
  );
}

function corruptDelivery(file: string, reason: string): AgentError {
  return new AgentError(
    AgentErrorCode.STATE_CORRUPT,
    `the delivery record ${file} is unreadable (${reason}); the agent will not guess which sendings of the release beside it the hub has answered. Keep the file for investigation; moving it aside makes the agent ask the hub again about that release as first made (a re-send, never a new release).`,
  );
}
