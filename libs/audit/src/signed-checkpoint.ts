import type { Checkpoint, CheckpointFields } from '@tessera/protocol';
import { isIsoUtcTimestamp, isPlainObject, isSha256Hex } from './audit-record';
import {
  publicKeyFingerprint,
  signCanonical,
  SignatureProblemCode,
  toPrivateKey,
  toPublicKey,
  verifyCanonical,
  type SignatureVerification,
  type SigningKeyInput,
  type VerifyKeyInput,
} from './ed25519-signing';

export type { Checkpoint, CheckpointFields } from '@tessera/protocol';

const CHECKPOINT_KEYS = new Set(['seq', 'headHash', 'time', 'count', 'keyId', 'signature']);

/** Returns why `value` is not a well-formed checkpoint (signature not checked), or null. */
export function describeCheckpointProblem(value: unknown): string | null {
  if (!isPlainObject(value)) return 'checkpoint is not a JSON object';
  for (const key of Object.keys(value)) {
    if (!CHECKPOINT_KEYS.has(key)) return `checkpoint has unknown field "${key}"`;
  }
  const { seq, headHash, time, count, keyId, signature } = value;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return 'checkpoint seq must be an integer >= 1';
  if (!isSha256Hex(headHash)) return 'checkpoint headHash must be 64 lowercase hex digits';
  if (!isIsoUtcTimestamp(time)) return 'checkpoint time must be an ISO-8601 UTC timestamp';
  if ('count' in value && (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0)) {
    return 'checkpoint count must be a non-negative integer when present';
  }
  if (!isSha256Hex(keyId)) return 'checkpoint keyId must be 64 lowercase hex digits';
  if (typeof signature !== 'string') return 'checkpoint signature must be a base64 string';
  return null;
}

/**
 * Signs a checkpoint of the audit chain with the hub's Ed25519 key (RFC 8032): signature over the RFC 8785 canonical
 * JSON of { seq, headHash, time, count?, keyId }. Throws on malformed fields or a non-Ed25519 key.
 */
export function signCheckpoint(fields: CheckpointFields, privateKey: SigningKeyInput): Checkpoint {
  const key = toPrivateKey(privateKey);
  const unsigned: Omit<Checkpoint, 'signature'> = {
    seq: fields.seq,
    headHash: fields.headHash,
    time: fields.time,
    ...(fields.count === undefined ? {} : { count: fields.count }),
    keyId: publicKeyFingerprint(key),
  };
  const problem = describeCheckpointProblem({ ...unsigned, signature: '' });
  if (problem !== null) throw new RangeError(`cannot sign checkpoint: ${problem}`);
  return { ...unsigned, signature: signCanonical(unsigned, key) };
}

/** Verifies a checkpoint's shape, that keyId names `publicKey`, and its Ed25519 signature. */
export function verifyCheckpoint(checkpoint: unknown, publicKey: VerifyKeyInput): SignatureVerification {
  const problem = describeCheckpointProblem(checkpoint);
  if (problem !== null) return { ok: false, code: SignatureProblemCode.Malformed, message: problem };
  const { signature, ...unsigned } = checkpoint as Checkpoint;
  const key = toPublicKey(publicKey);
  const keyId = publicKeyFingerprint(key);
  if (unsigned.keyId !== keyId) {
    return {
      ok: false,
      code: SignatureProblemCode.KeyMismatch,
      message: `checkpoint seq ${unsigned.seq} was signed by key ${unsigned.keyId}, not ${keyId}`,
    };
  }
  if (!verifyCanonical(unsigned, signature, key)) {
    return {
      ok: false,
      code: SignatureProblemCode.BadSignature,
      message: `checkpoint seq ${unsigned.seq}: signature does not verify`,
    };
  }
  return { ok: true, keyId };
}
