import type { AuditActor, AuditSubject, JsonObject, JsonValue } from '@tessera/audit';
import type { AuditEvent } from './audit-trail';

/**
 * Thrown when an event may not enter the audit log: it would carry a secret (a field named like a password, token,
 * private key or secret, or a PEM private key), it is not JSON, or it is too large. Such an event is a bug in the
 * caller: the log is exported to auditors and can never be edited afterwards.
 */
export class AuditRecordRefusedError extends Error {
  override readonly name = 'AuditRecordRefusedError';
}

/** The parts of a record the caller decides; seq, prevHash, time and hash are the writer's. */
export interface NormalizedAuditEvent {
  actor: AuditActor;
  action: string;
  subject: AuditSubject;
  details: JsonObject;
}

/** Largest canonical `details` accepted, in UTF-16 code units: records are evidence, not payload storage. */
export const MAX_DETAILS_LENGTH = 16 * 1024;

/**
 * Field names that announce a secret. Compared after lower-casing and dropping everything but letters and digits,
 * so `private_key`, `privateKeyPem` and `Private-Key` all match. Names ending in "token" are refused too
 * (`token`, `accessToken`, `enrollment_token`), while `tokenExpiresAt` or `tokenHash` are fine.
 */
const SECRET_NAME =
  /password|passphrase|passwd|secret|privatekey|apikey|credential|cookie|authorization|sessionkey|jwt/;
const PEM_PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;
/** Lone UTF-16 surrogates, which RFC 8785 (and so the record hash) refuses. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function isSecretFieldName(name: string): boolean {
  const n = name.toLowerCase().replace(/[^a-z0-9]/g, '');
  return SECRET_NAME.test(n) || n.endsWith('token');
}

/**
 * Strings as they can be hashed and stored: U+0000 (which PostgreSQL jsonb cannot hold) and lone surrogates become
 * U+FFFD. Done before hashing, so the
 * stored record is exactly the hashed one; without it a login attempt with such a username could not be recorded.
 */
function storable(s: string): string {
  return s.replaceAll('\u0000', '\uFFFD').replace(LONE_SURROGATE, '\uFFFD');
}

function clean(value: unknown, path: string): JsonValue {
  if (typeof value === 'string') {
    if (PEM_PRIVATE_KEY.test(value)) throw new AuditRecordRefusedError(`${path} holds a PEM private key`);
    return storable(value);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return value;
  if (Array.isArray(value)) return value.map((v, i) => clean(v, `${path}[${i}]`));
  const out: JsonObject = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (isSecretFieldName(key)) {
      throw new AuditRecordRefusedError(`${path}.${key}: audit records never hold passwords, tokens, keys or secrets`);
    }
    out[storable(key)] = clean(v, `${path}.${key}`);
  }
  return out;
}

/**
 * Checks and normalizes an event before it is chained. `details` takes JSON's meaning (as JSON.stringify: Dates
 * become ISO strings, undefined members are dropped), then is refused if it names a secret (see SECRET_NAME).
 */
export function normalizeAuditEvent(event: AuditEvent): NormalizedAuditEvent {
  let json: unknown;
  try {
    json = JSON.parse(JSON.stringify(event.details ?? {})) as unknown;
  } catch (err) {
    throw new AuditRecordRefusedError(`audit details of ${event.action} are not JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new AuditRecordRefusedError(`audit details of ${event.action} must be a JSON object`);
  }
  const details = clean(json, 'details') as JsonObject;
  if (JSON.stringify(details).length > MAX_DETAILS_LENGTH) {
    throw new AuditRecordRefusedError(`audit details of ${event.action} exceed ${MAX_DETAILS_LENGTH} characters`);
  }
  const subject: AuditSubject = {};
  for (const [key, id] of Object.entries(event.subject ?? {})) {
    if (id !== undefined && id !== null) subject[key] = storable(String(id));
  }
  const actor: AuditActor = { type: event.actor.type, id: storable(event.actor.id) };
  if (event.actor.name !== undefined) actor.name = storable(event.actor.name);
  return { actor, action: event.action, subject, details };
}
