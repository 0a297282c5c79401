import type { PrivacyMechanism } from '@tessera/dp';
import type { FailureReport, SiloStudy, SiloTask, StudyPlan } from '@tessera/protocol';

/** One line of the daemon's log: which study and round, and what happened. Never a data value. */
export interface StepLine {
  study: string;
  round?: number;
  message: string;
}
export type StepLog = (line: StepLine) => void;

/** Everything a task needs from its plan. */
export interface PlanContext {
  task: SiloTask;
  /** The hub's deadline on this host's clock (ms): receipt time plus the time the hub said was left. */
  deadlineMs: number;
  study: SiloStudy;
  plan: StudyPlan;
  mechanism: PrivacyMechanism | null;
  name: string;
}

/** This task cannot be done: reported once for the task. */
export class TaskFailure extends Error {
  constructor(
    readonly code: FailureReport['code'],
    message: string,
  ) {
    super(message);
  }
}

/** This silo cannot take part in this plan at all (data, model, privacy mode): reported once, never retried. */
export class StudyFailure extends TaskFailure {}

/** Decodes the hub's raw float32 little-endian model (explicitly little-endian, whatever the host's byte order). */
export function float32FromLittleEndian(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(Math.floor(bytes.byteLength / 4));
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** Euclidean norm, accumulated in float64. */
export function l2Norm(values: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]! * values[i]!;
  return Math.sqrt(sum);
}

/** False when any value is NaN or ±Infinity. */
export function allFinite(values: Float32Array): boolean {
  // x·0 is NaN exactly when x is NaN or ±Infinity.
  let probe = 0;
  for (let i = 0; i < values.length; i++) probe += values[i]! * 0;
  return probe === 0;
}

/** A number for the log, or 'n/a'. */
export function fmt(value: number | null, digits = 3): string {
  return value === null ? 'n/a' : value.toFixed(digits);
}
