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
