// Shares travel through the hub encrypted to their recipient (Bonawitz et al. 2017, §5, round ShareKeys): a key from
// X25519 between the two participants' encryption keys and HKDF, AES-256-GCM (NIST SP 800-38D) with associated data
// that binds the configuration (hence the round), the sender and the receiver — a ciphertext replayed to another
// recipient, attributed to another sender, or moved to another round fails authentication.

import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';

import { encodeTuple } from './encoding.util';
import { hkdfSha256, x25519SharedSecret, type X25519PrivateKey } from './key-agreement';
import { compareIds, SECAGG_PROTOCOL } from './parameters';
import { SecAggErrorCode, SecAggException } from './secagg.exception';
import { SHARE_BYTES } from './secret-sharing';

/** Bytes of a share plaintext: the self-mask seed share, then the mask private key share. */
export const SHARE_PLAINTEXT_BYTES = 2 * SHARE_BYTES;
/** GCM nonce and tag sizes, in bytes. */
export const GCM_NONCE_BYTES = 12;
export const GCM_TAG_BYTES = 16;

/** The AES-256-GCM key two participants share: HKDF-SHA-256 of their X25519 secret, salted with the config hash. */
export function shareEncryptionKey(
  privateKey: X25519PrivateKey,
  peerPublicKey: Uint8Array,
  configHash: Uint8Array,
  a: string,
  b: string,
): Uint8Array {
  return shareEncryptionKeyFromSecret(x25519SharedSecret(privateKey, peerPublicKey), configHash, a, b);
}

/** shareEncryptionKey from the X25519 secret of the two encryption keys, when the caller has already agreed it. */
export function shareEncryptionKeyFromSecret(
  sharedSecret: Uint8Array,
  configHash: Uint8Array,
  a: string,
  b: string,
): Uint8Array {
  const [low, high] = compareIds(a, b) < 0 ? [a, b] : [b, a];
  const info = encodeTuple(`${SECAGG_PROTOCOL} share-encryption`, [low, high]);
  return hkdfSha256(sharedSecret, configHash, info, 32);
}

/** The associated data of the share from `from` to `to` in this round. */
export function shareAssociatedData(configHash: Uint8Array, roundId: string, from: string, to: string): Uint8Array {
  return encodeTuple(`${SECAGG_PROTOCOL} share`, [configHash, roundId, from, to]);
}

/** AES-256-GCM encryption: ciphertext followed by the 16-byte tag. */
export function sealShare(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  associatedData: Uint8Array,
): Uint8Array {
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG_BYTES });
  cipher.setAAD(associatedData);
  return new Uint8Array(Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]));
}

/** AES-256-GCM decryption of ciphertext‖tag; SHARE_DECRYPTION_FAILED when it does not authenticate. */
export function openShare(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  associatedData: Uint8Array,
): Uint8Array {
  if (sealed.length < GCM_TAG_BYTES || nonce.length !== GCM_NONCE_BYTES) {
    throw new SecAggException(SecAggErrorCode.ShareDecryptionFailed, 'Encrypted share too short or bad nonce.');
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG_BYTES });
    decipher.setAAD(associatedData);
    decipher.setAuthTag(sealed.subarray(sealed.length - GCM_TAG_BYTES));
    return new Uint8Array(
      Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - GCM_TAG_BYTES)), decipher.final()]),
    );
  } catch (error) {
    throw new SecAggException(SecAggErrorCode.ShareDecryptionFailed, 'An encrypted share does not authenticate.', {
      cause: error,
    });
  }
}

/**
 * The commitment to a self-mask seed that the hub checks a rebuilt seed against: SHA-256 over the labelled
 * (configHash, participantId, seed). The seed is 256 uniform bits, so the hash reveals nothing usable about it.
 */
export function selfMaskCommitment(seed: Uint8Array, configHash: Uint8Array, participantId: string): string {
  return createHash('sha256')
    .update(encodeTuple(`${SECAGG_PROTOCOL} self-mask-commitment`, [configHash, participantId, seed]))
    .digest('hex');
}
