// The participant's state between rounds, and the helpers every participant step shares. Plain JSON: the agent
// persists it where it keeps its identity key (it holds the participant's secrets, base64), or keeps it in memory.

import type { KeyObject } from 'node:crypto';

import { fromBase64 } from './encoding.util';
import { X25519_KEY_BYTES, x25519PrivateKeyObject, type X25519PrivateKey } from './key-agreement';
import { EncryptedShare } from './messages';
import { SecAggConfig } from './parameters';
import { SecAggErrorCode, SecAggException } from './secagg.exception';
import {
  GCM_NONCE_BYTES,
  openShare,
  SHARE_PLAINTEXT_BYTES,
  shareAssociatedData,
  shareEncryptionKey,
} from './share-encryption';

/** A neighbour whose advertisement verified, with its two public keys (base64). */
export interface NeighbourKeys {
  participantId: string;
  maskPublicKey: string;
  encryptionPublicKey: string;
  /**
   * The AES-256-GCM key of the shares between this participant and the neighbour (base64), agreed once at ShareKeys
   * and kept so that masking and unmasking need not agree it again. It follows from encryptionPrivateKey, which the
   * same state holds, so keeping it exposes nothing more. Absent in a state written before it was kept: derived then.
   */
  shareKey?: string;
}

/** What every state carries: the round's configuration, its hash and who this participant is. */
export interface RoundIdentity {
  config: SecAggConfig;
  configHash: string;
  participantId: string;
}

/** After AdvertiseKeys: the two ephemeral key pairs (private keys in base64). */
export interface AdvertisedState extends RoundIdentity {
  phase: 'advertised';
  maskPrivateKey: string;
  encryptionPrivateKey: string;
}

/** After ShareKeys: also the self-mask seed and the neighbours the shares went to. */
export interface SharedState extends RoundIdentity {
  phase: 'shared';
  maskPrivateKey: string;
  encryptionPrivateKey: string;
  selfMaskSeed: string;
  neighbours: NeighbourKeys[];
  /**
   * The pairwise mask PRG keys by neighbour id (base64), agreed at ShareKeys from maskPrivateKey, which this state
   * holds too. Dropped with maskPrivateKey at masking: a masked state keeps neither. Absent in a state written before
   * they were kept: agreed at masking then.
   */
  pairwiseMaskKeys?: Record<string, string>;
}

/**
 * After MaskedInputCollection. The participant's own mask private key and self-mask seed are gone: only its
 * neighbours' shares can rebuild them now, so a later theft of this state cannot unmask its input.
 */
export interface MaskedState extends RoundIdentity {
  phase: 'masked';
  encryptionPrivateKey: string;
  neighbours: NeighbourKeys[];
  maskPartners: string[];
  /** The encrypted shares received from the mask partners, decrypted again only when the hub asks for them. */
  receivedShares: EncryptedShare[];
  /** Which kind of share was revealed for each owner so far: a later request may not ask for the other kind. */
  revealed: { owner: string; kind: ShareKind }[];
}

/** The two secrets a participant shares: its self-mask seed b_u and its mask private key s_u^SK. */
export type ShareKind = 'selfMaskSeed' | 'maskKey';

/**
 * The share key with `neighbour`: the one kept at ShareKeys, or agreed again from the encryption private key (made
 * into a key object only then, by `encryptionPrivateKey`).
 */
export function shareKeyWith(
  state: RoundIdentity,
  encryptionPrivateKey: () => X25519PrivateKey,
  hashBytes: Uint8Array,
  neighbour: NeighbourKeys,
): Uint8Array {
  if (neighbour.shareKey !== undefined) return fromBase64(neighbour.shareKey, 32, 'shareKey');
  return shareEncryptionKey(
    encryptionPrivateKey(),
    fromBase64(neighbour.encryptionPublicKey, X25519_KEY_BYTES, 'encryptionPublicKey'),
    hashBytes,
    state.participantId,
    neighbour.participantId,
  );
}

/** The 66-byte plaintext of a share from `neighbour` under `key` (shareKeyWith), or SHARE_DECRYPTION_FAILED naming it. */
export function decryptShare(
  state: RoundIdentity,
  key: Uint8Array,
  hashBytes: Uint8Array,
  share: EncryptedShare,
): Uint8Array {
  const ad = shareAssociatedData(hashBytes, state.config.roundId, share.from, share.to);
  try {
    const plaintext = openShare(
      key,
      fromBase64(share.nonce, GCM_NONCE_BYTES, 'nonce'),
      fromBase64(share.ciphertext, null, 'ciphertext'),
      ad,
    );
    if (plaintext.length !== SHARE_PLAINTEXT_BYTES) {
      throw new SecAggException(SecAggErrorCode.ShareDecryptionFailed, 'Share plaintext has the wrong length.');
    }
    return plaintext;
  } catch (error) {
    throw new SecAggException(
      SecAggErrorCode.ShareDecryptionFailed,
      `The share from ${share.from} to ${share.to} does not decrypt: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}

/** Throws OUT_OF_ORDER unless the state is in the phase a step needs (a state read back from disk may not be). */
export function assertPhase(state: { phase: string }, expected: string): void {
  if (state.phase !== expected) {
    throw new SecAggException(
      SecAggErrorCode.OutOfOrder,
      `This step needs a participant in phase ${expected}, not ${state.phase}.`,
    );
  }
}

/** A private key of the state (base64) made into a key object at its first use only: kept secrets often spare it. */
export function lazyPrivateKey(base64: string, what: string): () => KeyObject {
  let key: KeyObject | undefined;
  return () => (key ??= x25519PrivateKeyObject(fromBase64(base64, X25519_KEY_BYTES, what)));
}
