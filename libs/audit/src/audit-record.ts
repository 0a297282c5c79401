import { canonicalJson, sha256Hex, type JsonObject } from '@tessera/canonical';
import type { AuditActor, AuditActorType, AuditRecord, AuditSubject } from '@tessera/protocol';

/** prevHash of the first record (seq 1): 64 zeros, i.e. a SHA-256-sized all-zero value. */
export const GENESIS_PREV_HASH = '0'.repeat(64);

export type { AuditActor, AuditActorType, AuditRecord, AuditSubject } from '@tessera/protocol';
export const AUDIT_ACTOR_TYPES: readonly AuditActorType[] = ['user', 'silo', 'system'];

/** The fields a record hash commits to: everything except `hash` itself. */
export type AuditRecordHashInput = Omit<AuditRecord, 'hash'>;

/** What a caller supplies to append; seq, prevHash and hash are filled in by appendRecord. */
export interface AuditRecordInput {
  time: string;
  actor: AuditActor;
  action: string;
  subject?: AuditSubject;
  details?: JsonObject;
}

/** The trusted end of a chain (the last record, or genesis as { seq: 0, hash: GENESIS_PREV_HASH }). */
export interface ChainAnchor {
  seq: number;
  hash: string;
}

/** Thrown by appendRecord when the input would make a record that verifiers reject. */
export class AuditRecordError extends Error {
  override readonly name = 'AuditRecordError';
}

const HEX64 = /^[0-9a-f]{64}$/;
// RFC 3339 profile of ISO 8601, UTC only ("Z"), optional fraction of up to 9 digits.
const ISO_UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?Z$/;
const RECORD_KEYS = ['seq', 'prevHash', 'time', 'actor', 'action', 'subject', 'details', 'hash'] as const;
const MAX_ACTION_LENGTH = 128;

/** True for 64 lowercase hex digits (a SHA-256 digest as this library writes it). */
export function isSha256Hex(value: unknown): value is string {
  return typeof value === 'string' && HEX64.test(value);
}

/** True for an RFC 3339 UTC timestamp such as `2025-01-31T09:00:00.000Z` that names a real calendar instant. */
export function isIsoUtcTimestamp(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  const m = ISO_UTC.exec(value);
  if (m === null) return false;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  // Date.UTC rolls 2025-02-30 over to March; round-tripping rejects such dates (and hour 24, second 60).
  return new Date(ms).toISOString().slice(0, 19) === value.slice(0, 19);
}

/** True for a JSON object as JSON.parse makes it: not null, not an array, prototype Object.prototype or null. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Returns why `value` is not a well-formed AuditRecord, or null when it is. Does not check any hash. */
export function describeRecordProblem(value: unknown): string | null {
  if (!isPlainObject(value)) return 'record is not a JSON object';
  for (const key of Object.keys(value)) {
    // Top-level members outside the hashed body would ride along unauthenticated: refuse them.
    if (!(RECORD_KEYS as readonly string[]).includes(key)) return `unknown field "${key}"`;
  }
  for (const key of RECORD_KEYS) {
    if (!(key in value)) return `missing field "${key}"`;
  }
  const { seq, prevHash, time, actor, action, subject, details, hash } = value;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return 'seq must be an integer >= 1';
  if (!isSha256Hex(prevHash)) return 'prevHash must be 64 lowercase hex digits';
  if (!isSha256Hex(hash)) return 'hash must be 64 lowercase hex digits';
  if (!isIsoUtcTimestamp(time)) return 'time must be an ISO-8601 UTC timestamp like 2025-01-31T09:00:00.000Z';
  if (!isPlainObject(actor)) return 'actor must be an object';
  for (const key of Object.keys(actor)) {
    if (key !== 'type' && key !== 'id' && key !== 'name') return `actor has unknown field "${key}"`;
  }
  if (!(AUDIT_ACTOR_TYPES as readonly unknown[]).includes(actor.type)) {
    return `actor.type must be one of ${AUDIT_ACTOR_TYPES.join(', ')}`;
  }
  if (typeof actor.id !== 'string' || actor.id.length === 0) return 'actor.id must be a non-empty string';
  if ('name' in actor && typeof actor.name !== 'string') return 'actor.name must be a string when present';
  if (typeof action !== 'string' || !/^\S+$/.test(action) || action.length > MAX_ACTION_LENGTH) {
    return `action must be a non-empty string without spaces, at most ${MAX_ACTION_LENGTH} characters`;
  }
  if (!isPlainObject(subject)) return 'subject must be an object';
  for (const [key, id] of Object.entries(subject)) {
    if (typeof id !== 'string') return `subject.${key} must be a string id`;
  }
  if (!isPlainObject(details)) return 'details must be a JSON object';
  try {
    canonicalJson(details);
  } catch (error) {
    return `details: ${(error as Error).message}`;
  }
  return null;
}

/** Type guard over describeRecordProblem. */
export function isAuditRecord(value: unknown): value is AuditRecord {
  return describeRecordProblem(value) === null;
}

/**
 * The record hash: SHA-256 over the RFC 8785 canonical JSON of { seq, prevHash, time, actor, action, subject,
 * details } (see docs/audit-format.md). Committing to seq and prevHash makes every record fix its position and its
 * whole history. Extra members of `body` (such as a stored `hash`) are ignored.
 */
export function computeRecordHash(body: AuditRecordHashInput): string {
  const { seq, prevHash, time, actor, action, subject, details } = body;
  return sha256Hex(canonicalJson({ seq, prevHash, time, actor, action, subject, details }));
}

/**
 * Makes the record that follows `prev` (null for the first record): seq = prev.seq + 1, prevHash = prev.hash,
 * hash = computeRecordHash(...). Throws AuditRecordError if the result would not verify as well-formed.
 */
export function appendRecord(prev: ChainAnchor | null, input: AuditRecordInput): AuditRecord {
  if (prev !== null && (!Number.isSafeInteger(prev.seq) || prev.seq < 0 || !isSha256Hex(prev.hash))) {
    throw new AuditRecordError('previous record must have an integer seq >= 0 and a 64-hex-digit hash');
  }
  const body: AuditRecordHashInput = {
    seq: prev === null ? 1 : prev.seq + 1,
    prevHash: prev === null ? GENESIS_PREV_HASH : prev.hash,
    time: input.time,
    actor: withoutUndefined(input.actor),
    action: input.action,
    subject: withoutUndefined(input.subject ?? {}),
    details: input.details ?? {},
  };
  const problem = describeRecordProblem({ ...body, hash: GENESIS_PREV_HASH });
  if (problem !== null) throw new AuditRecordError(`cannot append audit record: ${problem}`);
  return { ...body, hash: computeRecordHash(body) };
}

// Optional members left as `undefined` (actor.name, subject ids) are dropped rather than rejected: in TypeScript
// `{ name: undefined }` and `{}` mean the same. `details` is not touched; undefined there is an error.
function withoutUndefined<T extends object>(value: T): T {
  if (!isPlainObject(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
