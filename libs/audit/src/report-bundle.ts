import { type KeyObject } from 'node:crypto';
import { canonicalJson, type JsonObject } from '@tessera/canonical';
import {
  GENESIS_PREV_HASH,
  isIsoUtcTimestamp,
  isPlainObject,
  isSha256Hex,
  type AuditRecord,
  type ChainAnchor,
} from './audit-record';
import { ChainBreakCode, ChainVerifier } from './chain-verifier';
import {
  publicKeyFingerprint,
  publicKeyPem,
  signCanonical,
  SignatureProblemCode,
  SigningKeyError,
  toPrivateKey,
  toPublicKey,
  verifyCanonical,
  type SigningKeyInput,
  type VerifyKeyInput,
} from './ed25519-signing';
import { checkRecordedState, recordedStateProblem, type RecordedState } from './recorded-state';
import { signCheckpoint, verifyCheckpoint, type Checkpoint } from './signed-checkpoint';

/** The `format` tag of version 1 report bundles. */
export const AUDIT_BUNDLE_FORMAT = 'tessera.audit-bundle/1';

/**
 * A study's compliance report as a self-contained, signed JSON document. `records` is a contiguous segment of the
 * hub's chain, from genesis (seq 1) or from just after a signed checkpoint, up to a signed checkpoint at its last
 * record. See docs/audit-format.md.
 */
export interface AuditBundle {
  format: typeof AUDIT_BUNDLE_FORMAT;
  generatedAt: string;
  hub: { publicKeyPem: string; keyId: string };
  /** Study summary chosen by the hub (approvals, participants, rounds, model hashes, privacy spent); opaque here. */
  study: JsonObject;
  records: AuditRecord[];
  checkpoints: Checkpoint[];
  /** base64 Ed25519 signature over canonicalJson of every other member of the bundle. */
  signature: string;
}

export interface BuildBundleInput {
  /** A contiguous run of records; if it does not start at seq 1, `checkpoints` must hold one at (first seq - 1). */
  records: readonly AuditRecord[];
  /** Signed checkpoints; those outside [first seq - 1, last seq] are left out. */
  checkpoints?: readonly Checkpoint[];
  study: JsonObject;
  /** The hub's Ed25519 private key: signs the bundle and, if needed, a checkpoint at the last record. */
  signingKey: SigningKeyInput;
  /** ISO-8601 UTC; defaults to now. Also the time of the head checkpoint when one has to be made. */
  generatedAt?: string;
}

/** Everything that can be wrong with a bundle, beyond the chain codes of ChainBreakCode. */
export enum BundleProblemCode {
  /** Not JSON of the bundle's shape (missing/extra members, wrong types, unreadable hub key). */
  Malformed = 'BUNDLE_MALFORMED',
  /** `format` is missing or not tessera.audit-bundle/1. */
  UnsupportedFormat = 'BUNDLE_FORMAT_UNSUPPORTED',
  /** hub.keyId is not the fingerprint of hub.publicKeyPem. */
  HubKeyIdMismatch = 'HUB_KEY_ID_MISMATCH',
  /** The bundle is signed by a key other than the one the verifier pinned. */
  SignerNotTrusted = 'SIGNER_NOT_TRUSTED',
  /** The bundle signature does not verify: something in it was changed after signing. */
  SignatureInvalid = 'BUNDLE_SIGNATURE_INVALID',
  CheckpointMalformed = 'CHECKPOINT_MALFORMED',
  /** A checkpoint names a key other than the bundle's hub key. */
  CheckpointKeyMismatch = 'CHECKPOINT_KEY_MISMATCH',
  CheckpointSignatureInvalid = 'CHECKPOINT_SIGNATURE_INVALID',
  /** A signed checkpoint's headHash differs from the chain's hash at its seq. */
  CheckpointMismatch = 'CHECKPOINT_MISMATCH',
  /** A checkpoint's count is not its seq. */
  CheckpointCountMismatch = 'CHECKPOINT_COUNT_MISMATCH',
  /** A checkpoint lies before the segment's start anchor. */
  CheckpointOutOfRange = 'CHECKPOINT_OUT_OF_RANGE',
  CheckpointDuplicate = 'CHECKPOINT_DUPLICATE',
  /** The segment starts after genesis but no signed checkpoint vouches for its first prevHash. */
  MissingStartAnchor = 'MISSING_START_ANCHOR',
  /** No valid signed checkpoint covers the segment's last record. */
  MissingHeadCheckpoint = 'MISSING_HEAD_CHECKPOINT',
  /** study.recordedState is present but not of the documented shape. */
  RecordedStateMalformed = 'RECORDED_STATE_MALFORMED',
  /** The hub's state (study.recordedState) holds a change that no record in the segment describes. */
  StateUnrecorded = 'STATE_UNRECORDED',
  /** A counted state change (an accepted update, a privacy charge) has more than one record. */
  StateRecordedTwice = 'STATE_RECORDED_TWICE',
}

export type BundleIssueCode = BundleProblemCode | ChainBreakCode;

export interface BundleProblem {
  code: BundleIssueCode;
  message: string;
  seq?: number;
}

export interface BundleSummary {
  generatedAt: string;
  records: number;
  /** First and last seq of the segment as the bundle states them. */
  fromSeq: number;
  headSeq: number;
  headHash: string;
  /** Checkpoints whose signature verified and whose hash matched the verified chain. */
  checkpointsVerified: number;
  checkpointsTotal: number;
  /** Fingerprint of hub.publicKeyPem (the key the bundle claims to be signed with). */
  signerKeyId: string;
  /** True when the caller pinned a key and it is the bundle's key. */
  signerPinned: boolean;
  /** State items of study.recordedState checked against the records; absent when the bundle states none. */
  stateItems?: number;
}

export interface BundleVerification {
  ok: boolean;
  problems: BundleProblem[];
  /** The earliest broken link: the chain's first break, else the lowest-seq checkpoint or anchor problem. */
  firstBroken?: { seq: number; code: BundleIssueCode; message: string };
  /** Present when the bundle had the right shape. */
  summary?: BundleSummary;
}

export interface VerifyBundleOptions {
  /** The hub key the auditor expects (obtained out of band); a bundle signed by any other key fails. */
  trustedPublicKey?: VerifyKeyInput;
}

const STATE_PROBLEMS = new Set<BundleIssueCode>([
  BundleProblemCode.StateUnrecorded,
  BundleProblemCode.StateRecordedTwice,
]);

/** Thrown by buildBundle when the input would not make a verifiable bundle. */
export class BundleBuildError extends Error {
  override readonly name = 'BundleBuildError';
}

const BUNDLE_KEYS = ['format', 'generatedAt', 'hub', 'study', 'records', 'checkpoints', 'signature'];

function structuralProblem(bundle: unknown): { code: BundleProblemCode; message: string } | null {
  const malformed = (message: string) => ({ code: BundleProblemCode.Malformed, message });
  if (!isPlainObject(bundle)) return malformed('the report is not a JSON object');
  if (bundle.format !== AUDIT_BUNDLE_FORMAT) {
    return {
      code: BundleProblemCode.UnsupportedFormat,
      message: `format is ${JSON.stringify(bundle.format) ?? 'missing'}; expected "${AUDIT_BUNDLE_FORMAT}"`,
    };
  }
  for (const key of Object.keys(bundle)) {
    if (!BUNDLE_KEYS.includes(key)) return malformed(`unknown member "${key}"`);
  }
  for (const key of BUNDLE_KEYS) {
    if (!(key in bundle)) return malformed(`missing member "${key}"`);
  }
  const { generatedAt, hub, study, records, checkpoints, signature } = bundle;
  if (!isIsoUtcTimestamp(generatedAt)) return malformed('generatedAt must be an ISO-8601 UTC timestamp');
  if (!isPlainObject(hub) || Object.keys(hub).sort().join(',') !== 'keyId,publicKeyPem') {
    return malformed('hub must be { publicKeyPem, keyId }');
  }
  if (typeof hub.publicKeyPem !== 'string' || !isSha256Hex(hub.keyId)) {
    return malformed('hub.publicKeyPem must be a PEM string and hub.keyId 64 lowercase hex digits');
  }
  // A private key would also yield a public key; refuse it so an exporter bug cannot pass unnoticed (and is loud).
  if (/PRIVATE KEY/.test(hub.publicKeyPem))
    return malformed('hub.publicKeyPem holds a PRIVATE key; the hub key must be published as SPKI PEM');
  try {
    toPublicKey(hub.publicKeyPem);
  } catch (error) {
    return malformed(`hub.publicKeyPem: ${(error as Error).message}`);
  }
  if (!isPlainObject(study)) return malformed('study must be a JSON object');
  if (!Array.isArray(records) || records.length === 0) return malformed('records must be a non-empty array');
  if (!Array.isArray(checkpoints)) return malformed('checkpoints must be an array');
  if (typeof signature !== 'string') return malformed('signature must be a base64 string');
  try {
    canonicalJson(bundle);
  } catch (error) {
    return malformed((error as Error).message);
  }
  return null;
}

function firstSeqOf(record: unknown): number {
  if (isPlainObject(record) && typeof record.seq === 'number' && Number.isSafeInteger(record.seq) && record.seq >= 1) {
    return record.seq;
  }
  return 1;
}

/**
 * Verifies a report bundle offline (docs/audit-format.md, "Verifying a bundle"): the bundle signature, the hub key
 * id and optional pin, the hash chain of the segment, every checkpoint's signature and its agreement with the
 * chain, the start anchor and the head checkpoint. Collects every problem; `firstBroken` names the earliest link.
 */
export function verifyBundle(bundle: unknown, options: VerifyBundleOptions = {}): BundleVerification {
  const structural = structuralProblem(bundle);
  if (structural !== null) return { ok: false, problems: [structural] };
  const b = bundle as AuditBundle;
  const problems: BundleProblem[] = [];
  const hubKey = toPublicKey(b.hub.publicKeyPem);
  const hubKeyId = publicKeyFingerprint(hubKey);

  if (b.hub.keyId !== hubKeyId) {
    problems.push({
      code: BundleProblemCode.HubKeyIdMismatch,
      message: `hub.keyId ${b.hub.keyId} is not the fingerprint ${hubKeyId} of hub.publicKeyPem`,
    });
  }
  let signerPinned = false;
  if (options.trustedPublicKey !== undefined) {
    const trustedId = publicKeyFingerprint(options.trustedPublicKey);
    signerPinned = trustedId === hubKeyId;
    if (!signerPinned) {
      problems.push({
        code: BundleProblemCode.SignerNotTrusted,
        message: `bundle is signed by key ${hubKeyId}, not the trusted key ${trustedId}`,
      });
    }
  }
  const { signature, ...unsigned } = b;
  if (!verifyCanonical(unsigned, signature, hubKey)) {
    problems.push({
      code: BundleProblemCode.SignatureInvalid,
      message: 'bundle signature does not verify: the report was changed after signing',
    });
  }

  // Checkpoints: shape, key and signature first; only valid ones may vouch for the chain.
  const fromSeq = firstSeqOf(b.records[0]);
  const trusted = new Map<number, Checkpoint>();
  b.checkpoints.forEach((cp, i) => {
    const check = verifyCheckpoint(cp, hubKey);
    if (!check.ok) {
      const code =
        check.code === SignatureProblemCode.Malformed
          ? BundleProblemCode.CheckpointMalformed
          : check.code === SignatureProblemCode.KeyMismatch
            ? BundleProblemCode.CheckpointKeyMismatch
            : BundleProblemCode.CheckpointSignatureInvalid;
      const seq = isPlainObject(cp) && typeof cp.seq === 'number' ? cp.seq : undefined;
      problems.push({ code, message: `checkpoints[${i}]: ${check.message}`, ...(seq === undefined ? {} : { seq }) });
      return;
    }
    if (trusted.has(cp.seq)) {
      problems.push({
        code: BundleProblemCode.CheckpointDuplicate,
        message: `two checkpoints at seq ${cp.seq}`,
        seq: cp.seq,
      });
      return;
    }
    if (cp.seq < fromSeq - 1) {
      problems.push({
        code: BundleProblemCode.CheckpointOutOfRange,
        message: `checkpoint seq ${cp.seq} lies before the segment, which starts at seq ${fromSeq}`,
        seq: cp.seq,
      });
      return;
    }
    if (cp.count !== undefined && cp.count !== cp.seq) {
      problems.push({
        code: BundleProblemCode.CheckpointCountMismatch,
        message: `checkpoint seq ${cp.seq} has count ${cp.count}`,
        seq: cp.seq,
      });
    }
    trusted.set(cp.seq, cp);
  });

  // Start anchor: genesis, or a trusted checkpoint at fromSeq - 1 equal to the first record's prevHash.
  const first = b.records[0];
  const firstPrev = isPlainObject(first) && isSha256Hex(first.prevHash) ? first.prevHash : GENESIS_PREV_HASH;
  const after: ChainAnchor = { seq: fromSeq - 1, hash: fromSeq === 1 ? GENESIS_PREV_HASH : firstPrev };
  const verifiedHashes = new Map<number, string>([[after.seq, after.hash]]);
  if (fromSeq > 1) {
    const anchor = trusted.get(fromSeq - 1);
    if (anchor === undefined) {
      problems.push({
        code: BundleProblemCode.MissingStartAnchor,
        message: `the segment starts at seq ${fromSeq} but no valid checkpoint at seq ${fromSeq - 1} vouches for its prevHash`,
        seq: fromSeq - 1,
      });
    }
  }

  // The chain, checked against the latest trusted checkpoint as its head.
  const verifier = new ChainVerifier({ after });
  for (const record of b.records) {
    if (verifier.push(record) !== null) break;
    const { seq, hash } = verifier.head;
    if (trusted.has(seq)) verifiedHashes.set(seq, hash);
  }
  const headCp = [...trusted.values()].reduce<Checkpoint | undefined>(
    (max, cp) => (max === undefined || cp.seq > max.seq ? cp : max),
    undefined,
  );
  const chain = verifier.finish(
    headCp === undefined ? {} : { expectedHead: { seq: headCp.seq, hash: headCp.headHash } },
  );
  if (!chain.ok) problems.push({ code: chain.reason, message: chain.message, seq: chain.brokenAt });
  const last = b.records[b.records.length - 1];
  const headSeq = isPlainObject(last) && typeof last.seq === 'number' ? last.seq : fromSeq + b.records.length - 1;
  if (headCp === undefined) {
    problems.push({
      code: BundleProblemCode.MissingHeadCheckpoint,
      message: `no valid checkpoint covers the last record (seq ${headSeq})`,
      seq: headSeq,
    });
  }

  let checkpointsVerified = 0;
  for (const cp of trusted.values()) {
    const hash = verifiedHashes.get(cp.seq);
    if (hash === cp.headHash) {
      checkpointsVerified += 1;
    } else if (hash !== undefined) {
      problems.push({
        code: BundleProblemCode.CheckpointMismatch,
        message: `checkpoint seq ${cp.seq} says ${cp.headHash} but the chain has ${hash}`,
        seq: cp.seq,
      });
    }
    // hash undefined: the checkpoint lies past the first break (or is the head the chain fell short of), which the
    // chain problem already reports.
  }

  // The hub's statement of its state: every item must have its record in the segment (checked only on a chain that
  // verified: a broken chain's records prove nothing).
  let stateItems: number | undefined;
  if ('recordedState' in b.study) {
    const shape = recordedStateProblem(b.study.recordedState);
    if (shape !== null) {
      problems.push({ code: BundleProblemCode.RecordedStateMalformed, message: shape });
    } else if (chain.ok) {
      const state = b.study.recordedState as unknown as RecordedState;
      stateItems = state.items.length;
      for (const p of checkRecordedState(state, b.records)) {
        const code =
          p.code === 'STATE_UNRECORDED' ? BundleProblemCode.StateUnrecorded : BundleProblemCode.StateRecordedTwice;
        problems.push({ code, message: p.message, ...(p.seq === undefined ? {} : { seq: p.seq }) });
      }
    }
  }

  const located = problems.filter((p): p is BundleProblem & { seq: number } => p.seq !== undefined);
  const chainBreak = chain.ok ? undefined : { seq: chain.brokenAt, code: chain.reason, message: chain.message };
  const lowest = located.reduce<(BundleProblem & { seq: number }) | undefined>(
    (min, p) => (min === undefined || p.seq < min.seq ? p : min),
    undefined,
  );
  const firstBroken =
    chainBreak ?? (lowest === undefined ? undefined : { seq: lowest.seq, code: lowest.code, message: lowest.message });
  const lastHash = isPlainObject(last) && typeof last.hash === 'string' ? last.hash : '';
  return {
    ok: problems.length === 0,
    problems,
    ...(firstBroken === undefined ? {} : { firstBroken }),
    summary: {
      generatedAt: b.generatedAt,
      records: b.records.length,
      fromSeq,
      headSeq,
      headHash: chain.ok ? chain.headHash : lastHash,
      checkpointsVerified,
      checkpointsTotal: b.checkpoints.length,
      signerKeyId: hubKeyId,
      signerPinned,
      ...(stateItems === undefined ? {} : { stateItems }),
    },
  };
}

/**
 * Assembles and signs a report bundle (docs/audit-format.md, "Report bundle"). Adds a checkpoint at the last record
 * when none is given, and refuses (BundleBuildError) anything verifyBundle would reject, so the hub never ships a
 * report that fails offline.
 */
export function buildBundle(input: BuildBundleInput): AuditBundle {
  let key: KeyObject;
  try {
    key = toPrivateKey(input.signingKey);
  } catch (error) {
    if (error instanceof SigningKeyError) throw new BundleBuildError(error.message);
    throw error;
  }
  if (input.records.length === 0) throw new BundleBuildError('a bundle needs at least one record');
  const generatedAt = input.generatedAt ?? new Date().toISOString();
  const fromSeq = input.records[0]!.seq;
  const head = input.records[input.records.length - 1]!;
  const checkpoints = (input.checkpoints ?? []).filter((cp) => cp.seq >= fromSeq - 1 && cp.seq <= head.seq);
  if (!checkpoints.some((cp) => cp.seq === head.seq)) {
    checkpoints.push(signCheckpoint({ seq: head.seq, headHash: head.hash, time: generatedAt, count: head.seq }, key));
  }
  checkpoints.sort((a, b) => a.seq - b.seq);
  const unsigned: Omit<AuditBundle, 'signature'> = {
    format: AUDIT_BUNDLE_FORMAT,
    generatedAt,
    hub: { publicKeyPem: publicKeyPem(key), keyId: publicKeyFingerprint(key) },
    study: input.study,
    records: [...input.records],
    checkpoints,
  };
  const bundle: AuditBundle = { ...unsigned, signature: signCanonical(unsigned, key) };
  // A chain or checkpoint problem is the exporter's bug: refused. A state change without its record is a fact about
  // the hub's history that the auditor must see: the bundle is signed, and verification fails naming it.
  const check = verifyBundle(bundle);
  const refused = check.problems.filter((p) => !STATE_PROBLEMS.has(p.code));
  if (refused.length > 0) {
    throw new BundleBuildError(
      `refusing to sign an unverifiable bundle: ${refused.map((p) => `${p.code}: ${p.message}`).join('; ')}`,
    );
  }
  return bundle;
}
