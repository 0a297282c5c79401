import { isPlainObject, type AuditRecord } from './audit-record';

/** The `format` tag of the hub's statement of its state, carried in a bundle as `study.recordedState`. */
export const RECORDED_STATE_FORMAT = 'tessera.recorded-state/1';

/**
 * One piece of hub state that must have its audit record (docs/audit-format.md, "Recorded state"). Read by the hub
 * from its state tables, not from the log, so a state change whose record is missing shows up here and not there.
 */
export type StateItem =
  | { kind: 'update.accepted'; studyId: string; siloId: string; round: number; attempt: number; updateSha256: string }
  | { kind: 'evaluation.reported'; studyId: string; siloId: string; round: number; attempt: number }
  | { kind: 'silo.failed'; studyId: string; siloId: string; round: number; attempt: number }
  | {
      kind: 'privacy.charged';
      studyId: string;
      siloId: string;
      round: number;
      attempt: number;
      task: 'train' | 'evaluate';
    }
  | { kind: 'round.opened'; studyId: string; round: number; attempt: number }
  | { kind: 'round.closed'; studyId: string; round: number; attempt: number }
  | { kind: 'study.ended'; studyId: string; status: 'completed' | 'failed' | 'stopped' };

export interface RecordedState {
  format: typeof RECORDED_STATE_FORMAT;
  items: StateItem[];
}

/** A state item without its record, or a record made twice for one state change. */
export interface StateCoverageProblem {
  code: 'STATE_UNRECORDED' | 'STATE_RECORDED_TWICE';
  message: string;
  /** The record made twice: the later one's seq. */
  seq?: number;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
}

/** Describes what is wrong with a `recordedState` member, or null when it has the documented shape. */
export function recordedStateProblem(value: unknown): string | null {
  if (!isPlainObject(value)) return 'recordedState must be a JSON object';
  if (value.format !== RECORDED_STATE_FORMAT) return `recordedState.format must be "${RECORDED_STATE_FORMAT}"`;
  if (!Array.isArray(value.items)) return 'recordedState.items must be an array';
  for (const [i, item] of value.items.entries()) {
    const at = `recordedState.items[${i}]`;
    if (!isPlainObject(item) || str(item.studyId) === undefined) return `${at} must be an object with a studyId`;
    const needsSilo = ['update.accepted', 'evaluation.reported', 'silo.failed', 'privacy.charged'].includes(
      String(item.kind),
    );
    switch (item.kind) {
      case 'update.accepted':
      case 'evaluation.reported':
      case 'silo.failed':
      case 'privacy.charged':
      case 'round.opened':
      case 'round.closed':
        if (num(item.round) === undefined || num(item.attempt) === undefined)
          return `${at} (${String(item.kind)}) needs integer round and attempt`;
        if (needsSilo && str(item.siloId) === undefined) return `${at} (${String(item.kind)}) needs a siloId`;
        if (item.kind === 'update.accepted' && !/^[0-9a-f]{64}$/.test(String(item.updateSha256)))
          return `${at} needs updateSha256 (64 hex digits)`;
        if (item.kind === 'privacy.charged' && item.task !== 'train' && item.task !== 'evaluate')
          return `${at} needs task "train" or "evaluate"`;
        break;
      case 'study.ended':
        if (!['completed', 'failed', 'stopped'].includes(String(item.status)))
          return `${at} needs status completed, failed or stopped`;
        break;
      default:
        return `${at} has an unknown kind ${JSON.stringify(item.kind)}`;
    }
  }
  return null;
}

/** What identifies the record of a state item; records of older hubs may lack `attempt`, which then matches any. */
interface RecordKey {
  action: string;
  studyId: string;
  siloId?: string;
  round?: number;
  attempt?: number;
  extra?: [string, string];
}

const STUDY_END_ACTION = { completed: 'study.completed', failed: 'study.failed', stopped: 'study.stopped' } as const;

function keyOf(item: StateItem): RecordKey {
  switch (item.kind) {
    case 'update.accepted':
      return {
        action: 'round.update.accepted',
        studyId: item.studyId,
        siloId: item.siloId,
        round: item.round,
        attempt: item.attempt,
        extra: ['updateSha256', item.updateSha256],
      };
    case 'evaluation.reported':
    case 'silo.failed': {
      const action = item.kind === 'silo.failed' ? 'round.silo.failed' : 'round.evaluation.reported';
      return { action, studyId: item.studyId, siloId: item.siloId, round: item.round, attempt: item.attempt };
    }
    case 'privacy.charged':
      return {
        action: 'privacy.charged',
        studyId: item.studyId,
        siloId: item.siloId,
        round: item.round,
        attempt: item.attempt,
        extra: ['kind', item.task],
      };
    case 'round.opened':
      return { action: 'round.opened', studyId: item.studyId, round: item.round };
    case 'round.closed':
      return { action: 'round.closed', studyId: item.studyId, round: item.round, attempt: item.attempt };
    case 'study.ended':
      return { action: STUDY_END_ACTION[item.status], studyId: item.studyId };
  }
}

function matches(record: AuditRecord, key: RecordKey): boolean {
  if (record.action !== key.action || record.subject.studyId !== key.studyId) return false;
  if (key.siloId !== undefined && record.subject.siloId !== key.siloId) return false;
  const d = record.details;
  if (key.round !== undefined && d.round !== key.round) return false;
  // Evaluation rounds' close records of earlier hubs carry no attempt: they match the round.
  if (key.attempt !== undefined && d.attempt !== undefined && d.attempt !== key.attempt) return false;
  if (key.extra !== undefined && d[key.extra[0]] !== key.extra[1]) return false;
  return true;
}

function describeItem(item: StateItem): string {
  const silo = 'siloId' in item ? ` silo ${item.siloId}` : '';
  const round = 'round' in item ? ` round ${item.round} attempt ${item.attempt}` : '';
  const hash = item.kind === 'update.accepted' ? ` (update sha256 ${item.updateSha256})` : '';
  const status = item.kind === 'study.ended' ? ` (${item.status})` : '';
  return `${item.kind} of study ${item.studyId}${silo}${round}${hash}${status}`;
}

/** Actions whose state is counted (the model's average, the privacy budget): each must be recorded exactly once. */
const COUNTED = new Set(['update.accepted', 'privacy.charged']);

/**
 * Checks that every state item has its audit record among `records` (the segment of a bundle, which for a study
 * starts before the study's first record), and that no counted state change was recorded twice. The hub writes each
 * record in the transaction of its state change, so a missing record means the log does not describe the state.
 */
export function checkRecordedState(state: RecordedState, records: readonly AuditRecord[]): StateCoverageProblem[] {
  const problems: StateCoverageProblem[] = [];
  const byAction = new Map<string, AuditRecord[]>();
  for (const r of records) {
    const list = byAction.get(r.action) ?? [];
    list.push(r);
    byAction.set(r.action, list);
  }
  for (const item of state.items) {
    const key = keyOf(item);
    const found = (byAction.get(key.action) ?? []).filter((r) => matches(r, key));
    if (found.length === 0) {
      problems.push({
        code: 'STATE_UNRECORDED',
        message: `${describeItem(item)} is in the hub's state but no "${key.action}" record describes it`,
      });
    } else if (found.length > 1 && COUNTED.has(item.kind)) {
      problems.push({
        code: 'STATE_RECORDED_TWICE',
        message: `${describeItem(item)} has ${found.length} "${key.action}" records (seq ${found.map((r) => r.seq).join(', ')})`,
        seq: found[found.length - 1]!.seq,
      });
    }
  }
  return problems;
}
