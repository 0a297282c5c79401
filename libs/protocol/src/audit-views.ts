import type { JsonObject } from '@tessera/canonical';

// The audit trail as it crosses the wire (GET /api/audit/*, report bundles, the agent's own log): plain shapes, so
// the console reads them without the audit library. @tessera/audit builds, hashes, signs and verifies these very
// types (it imports them from here); their byte-level format is docs/audit-format.md.

/** Who performed an action: a console user, a silo (its agent, identified by its certificate) or the hub itself. */
export type AuditActorType = 'user' | 'silo' | 'system';

export interface AuditActor {
  type: AuditActorType;
  id: string;
  name?: string;
}

/** What the action concerns; every id is optional and a string (uuids in the hub). */
export interface AuditSubject {
  studyId?: string;
  siloId?: string;
  roundId?: string;
  [key: string]: string | undefined;
}

/**
 * One link of the audit hash chain. `details` is free-form JSON and MUST NOT contain patient data or anything
 * derived from individual records: the chain is exported to auditors and never redacted (keeping that out is the
 * caller's duty; no library can tell).
 */
export interface AuditRecord {
  seq: number;
  prevHash: string;
  time: string;
  actor: AuditActor;
  action: string;
  subject: AuditSubject;
  details: JsonObject;
  hash: string;
}

/** What a checkpoint attests: the chain's record at `seq` has hash `headHash`. */
export interface CheckpointFields {
  seq: number;
  headHash: string;
  /** When the hub signed it (ISO-8601 UTC). */
  time: string;
  /** Records in the chain up to and including seq; since seq is dense from 1 this always equals seq. */
  count?: number;
}

/** A checkpoint signed by the hub's Ed25519 key. */
export interface Checkpoint extends CheckpointFields {
  /** publicKeyFingerprint of the signing key. */
  keyId: string;
  /** base64 Ed25519 signature over canonicalJson of every other field (keyId included). */
  signature: string;
}

/** The key of an actor in an audit page's `actorNames`: its type and id, e.g. `user:3f…` or `system:hub`. */
export function auditActorKey(actor: Pick<AuditActor, 'type' | 'id'>): string {
  return `${actor.type}:${actor.id}`;
}

/**
 * The names the hub resolved for the actors of a page of audit records, by auditActorKey: usernames for accounts,
 * silo names for silos, a description of the hub component for the hub itself. Resolved when the page is read (a
 * silo renamed since shows its current name); the records themselves stay as they were hashed.
 */
export type AuditActorNames = Record<string, string>;

/** One audit signing key of the hub, as GET /api/audit/public-keys lists them. */
export interface AuditSigningKeyView {
  /** SHA-256 (hex) of the DER SubjectPublicKeyInfo: `openssl pkey -pubin -outform DER | sha256sum`. */
  keyId: string;
  publicKeyPem: string;
  /** When the hub made the key (ISO 8601 UTC). */
  createdAt: string;
  /** The key the hub signs checkpoints and reports with now. */
  current: boolean;
}

/**
 * Response headers of the compliance report downloads (report.json, report.pdf, report.csv): the audit chain head the
 * file covers. Pass the seq back as `?upTo=` to download another file covering the same head.
 */
export const REPORT_HEAD_HEADERS = { seq: 'x-audit-head-seq', hash: 'x-audit-head-hash' } as const;
