import { type JsonObject } from '@tessera/canonical';
import { isPlainObject, isSha256Hex } from './audit-record';
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

/**
 * The hub's signed acknowledgement of an agent upload. `payload` is chosen by the hub (for instance
 * { studyId, roundId, siloId, updateSha256, acceptedAt, auditSeq }); this library only signs and verifies it.
 */
export interface SignedReceipt<P extends JsonObject = JsonObject> {
  payload: P;
  keyId: string;
  /** base64 Ed25519 signature over canonicalJson({ payload, keyId }). */
  signature: string;
}

const RECEIPT_KEYS = new Set(['payload', 'keyId', 'signature']);

/** Signs a receipt: Ed25519 (RFC 8032) over the RFC 8785 canonical JSON of { payload, keyId }. */
export function signReceipt<P extends JsonObject>(payload: P, privateKey: SigningKeyInput): SignedReceipt<P> {
  if (!isPlainObject(payload)) throw new TypeError('receipt payload must be a JSON object');
  const key = toPrivateKey(privateKey);
  const keyId = publicKeyFingerprint(key);
  return { payload, keyId, signature: signCanonical({ payload, keyId }, key) };
}

/** Verifies a receipt's shape, that keyId names `publicKey`, and its signature. */
export function verifyReceipt(receipt: unknown, publicKey: VerifyKeyInput): SignatureVerification {
  const malformed = (message: string): SignatureVerification => ({
    ok: false,
    code: SignatureProblemCode.Malformed,
    message,
  });
  if (!isPlainObject(receipt)) return malformed('receipt is not a JSON object');
  for (const key of Object.keys(receipt)) {
    if (!RECEIPT_KEYS.has(key)) return malformed(`receipt has unknown field "${key}"`);
  }
  const { payload, keyId, signature } = receipt;
  if (!isPlainObject(payload)) return malformed('receipt payload must be a JSON object');
  if (!isSha256Hex(keyId)) return malformed('receipt keyId must be 64 lowercase hex digits');
  if (typeof signature !== 'string') return malformed('receipt signature must be a base64 string');
  const key = toPublicKey(publicKey);
  const expectedKeyId = publicKeyFingerprint(key);
  if (keyId !== expectedKeyId) {
    return {
      ok: false,
      code: SignatureProblemCode.KeyMismatch,
      message: `receipt was signed by key ${keyId}, not ${expectedKeyId}`,
    };
  }
  let valid: boolean;
  try {
    valid = verifyCanonical({ payload, keyId }, signature, key);
  } catch (error) {
    return malformed(`receipt payload is not canonical JSON: ${(error as Error).message}`);
  }
  if (!valid)
    return { ok: false, code: SignatureProblemCode.BadSignature, message: 'receipt signature does not verify' };
  return { ok: true, keyId };
}
