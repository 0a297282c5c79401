import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentError, AgentErrorCode } from '../agent.error';
import { writeFileAtomic } from '../state/atomic-file.util';

/** The file's leading bytes: 'TSC1', then the header's length (uint32 LE), the header JSON and two float32 vectors. */
const MAGIC = 'TSC1';

interface ControlFileHeader {
  studyId: string;
  planHash: string;
  /** The global model of the round that produced `after` from `before`. */
  baseModelHash: string;
  round: number;
  /** Values in each of the two vectors. */
  length: number;
}

/** The silo's SCAFFOLD control variate for one study, as last computed (ADR 0019). */
export interface StoredControlVariate extends ControlFileHeader {
  /** c_i before the round on baseModelHash. */
  before: Float32Array;
  /** c_i⁺ after it: what the silo uploaded Δc_i = after − before for. */
  after: Float32Array;
}

/**
 * This silo's SCAFFOLD control variates c_i (Karimireddy et al. 2020), one file per study in the agent's state
 * directory: `control-variates/<studyId>.tsc`, replaced atomically (0600), so they survive agent restarts. Each keeps
 * c_i both before and after the last round it trained in, with that round's base model: a round redone on the same
 * model (a crash after the file was written but before the update was persisted) starts again from `before`, any later
 * round from `after`. Never uploaded: only Δc_i leaves the silo, inside the update.
 */
export class ControlVariateStore {
  readonly root: string;

  constructor(stateRoot: string) {
    this.root = join(stateRoot, 'control-variates');
  }

  /**
   * c_i to train round `baseModelHash` from: zeros before the first round (and for another plan version, whose
   * control variates start again), `before` when that round is being redone, `after` otherwise.
   */
  controlFor(studyId: string, planHash: string, baseModelHash: string, length: number): Float32Array {
    const stored = this.load(studyId);
    if (stored === null || stored.planHash !== planHash || stored.length !== length) return new Float32Array(length);
    return (stored.baseModelHash === baseModelHash ? stored.before : stored.after).slice();
  }

  load(studyId: string): StoredControlVariate | null {
    const file = this.fileOf(studyId);
    if (!existsSync(file)) return null;
    const bytes = readFileSync(file);
    if (bytes.length < 8 || bytes.subarray(0, 4).toString('latin1') !== MAGIC) throw corrupt(file, 'no TSC1 header');
    const headerLength = bytes.readUInt32LE(4);
    let header: ControlFileHeader;
    try {
      header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as ControlFileHeader;
    } catch {
      throw corrupt(file, 'its header is not JSON');
    }
    const start = 8 + headerLength;
    if (header.studyId !== studyId || bytes.length !== start + 8 * header.length) {
      throw corrupt(file, `it does not hold two vectors of ${header.length} values for study ${studyId}`);
    }
    const values = new Float32Array(2 * header.length);
    for (let i = 0; i < values.length; i++) values[i] = bytes.readFloatLE(start + 4 * i);
    return { ...header, before: values.slice(0, header.length), after: values.slice(header.length) };
  }

  /** Written before the update that carries after − before is persisted (and so before it can leave). */
  save(entry: StoredControlVariate): string {
    if (entry.before.length !== entry.length || entry.after.length !== entry.length) {
      throw new Error(
        `control variates of ${entry.before.length} and ${entry.after.length} values, not ${entry.length}`,
      );
    }
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    const header: ControlFileHeader = {
      studyId: entry.studyId,
      planHash: entry.planHash,
      baseModelHash: entry.baseModelHash,
      round: entry.round,
      length: entry.length,
    };
    const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
    const out = Buffer.alloc(8 + headerBytes.length + 8 * entry.length);
    out.write(MAGIC, 0, 'latin1');
    out.writeUInt32LE(headerBytes.length, 4);
    headerBytes.copy(out, 8);
    const start = 8 + headerBytes.length;
    for (let i = 0; i < entry.length; i++) {
      out.writeFloatLE(entry.before[i]!, start + 4 * i);
      out.writeFloatLE(entry.after[i]!, start + 4 * (entry.length + i));
    }
    const file = this.fileOf(entry.studyId);
    writeFileAtomic(file, out);
    return file;
  }

  private fileOf(studyId: string): string {
    if (!/^[0-9a-f-]{36}$/.test(studyId)) throw new Error(`not a study id: ${studyId}`);
    return join(this.root, `${studyId}.tsc`);
  }
}

function corrupt(file: string, why: string): AgentError {
  return new AgentError(AgentErrorCode.STATE_CORRUPT, `${file} is not a control-variate file: ${why}`);
}
