import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AdvertisedState, MaskedState, SharedState } from '@tessera/secagg';
import { AgentError, AgentErrorCode } from '../agent.error';
import { writeFileAtomic } from '../state/atomic-file.util';

/**
 * A participant's state in one round, with the message that goes with it (re-sent as it was after a restart). The
 * states hold the round's ephemeral private keys and, until masking, the self-mask seed: they are secrets of this
 * silo and stay in its state directory, mode 0600.
 */
export type StoredParticipant =
  | { phase: 'advertised'; state: AdvertisedState; message: Record<string, unknown> }
  | { phase: 'shared'; state: SharedState; message: Record<string, unknown> }
  /** `frame`: the masked-input frame, base64 (the masked vector is what the hub receives anyway). */
  | { phase: 'masked'; state: MaskedState; frame: string }
  | { phase: 'uploaded'; state: MaskedState };

const PHASES = new Set(['advertised', 'shared', 'masked', 'uploaded']);

/** One round attempt's participant state: `<state dir>/secagg/<study>/<round>-<attempt>.json`. */
export class SecAggStateStore {
  readonly file: string;

  constructor(stateDir: string, task: { studyId: string; round: number; attempt: number }) {
    this.file = join(stateDir, 'secagg', task.studyId, `${task.round}-${task.attempt}.json`);
  }

  load(): StoredParticipant | null {
    if (!existsSync(this.file)) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.file, 'utf8'));
    } catch (error) {
      throw new AgentError(
        AgentErrorCode.STATE_CORRUPT,
        `The secure-aggregation state ${this.file} is not JSON (${(error as Error).message}); delete it to drop out of the round.`,
      );
    }
    const phase = (parsed as { phase?: unknown } | null)?.phase;
    if (typeof phase !== 'string' || !PHASES.has(phase)) {
      throw new AgentError(
        AgentErrorCode.STATE_CORRUPT,
        `The secure-aggregation state ${this.file} has no known phase.`,
      );
    }
    return parsed as StoredParticipant;
  }

  save(stored: StoredParticipant): void {
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    writeFileAtomic(this.file, JSON.stringify(stored), 0o600);
  }

  remove(): void {
    rmSync(this.file, { force: true });
  }
}
