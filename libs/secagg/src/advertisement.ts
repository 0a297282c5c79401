// Key advertisements (round AdvertiseKeys): made by a participant, checked by the hub when it collects them and again
// by every neighbour before it encrypts anything to the keys inside. The hub's check is bookkeeping; the neighbours'
// check is the security control, since the hub could skip its own.

import { KeyObject } from 'node:crypto';

import { encodeTuple, fromBase64, fromHex, toBase64 } from './encoding.util';
import { IdentityKeyDirectory, signWithIdentity, verifyWithIdentity } from './identity-signature';
import { X25519_KEY_BYTES, x25519SharedSecret, x25519PrivateKeyObject } from './key-agreement';
import { KeyAdvertisement, parseMessage } from './messages';
import { SECAGG_PROTOCOL, SecAggConfig } from './parameters';
import { ExclusionReason, ParticipantExclusion, SecAggErrorCode, SecAggException } from './secagg.exception';

/** The bytes an identity key signs: the labelled (configHash, participantId, maskPublicKey, encryptionPublicKey). */
export function advertisementPayload(
  configHash: string,
  participantId: string,
  maskPublicKey: Uint8Array,
  encryptionPublicKey: Uint8Array,
): Uint8Array {
  return encodeTuple(`${SECAGG_PROTOCOL} advertisement`, [
    fromHex(configHash, 32, 'configHash'),
    participantId,
    maskPublicKey,
    encryptionPublicKey,
  ]);
}

/** A signed advertisement of two public keys. */
export function signAdvertisement(
  configHash: string,
  participantId: string,
  maskPublicKey: Uint8Array,
  encryptionPublicKey: Uint8Array,
  identityKey: KeyObject,
): KeyAdvertisement {
  const payload = advertisementPayload(configHash, participantId, maskPublicKey, encryptionPublicKey);
  return {
    participantId,
    configHash,
    maskPublicKey: toBase64(maskPublicKey),
    encryptionPublicKey: toBase64(encryptionPublicKey),
    signature: toBase64(signWithIdentity(identityKey, payload)),
  };
}

/** The result of checking one message: the parsed message, or why its sender is set aside. */
export type Checked<T> = { ok: true; value: T } | { ok: false; exclusion: ParticipantExclusion };

// A fixed scalar to probe a peer's public key with: X25519 against a small-order point gives the all-zero secret,
// which OpenSSL refuses. Probing at advertisement time stops one bad key from aborting every neighbour later.
const PROBE_PRIVATE_KEY = x25519PrivateKeyObject(new Uint8Array(X25519_KEY_BYTES).fill(0x5a));

/**
 * Checks that an advertised X25519 public key is usable, throwing (MALFORMED_MESSAGE) if it is not. The default
 * agrees it with a fixed probe scalar (the hub holds no key of its own). A participant passes its own key agreement
 * instead: the all-zero secret comes from a small-order point whatever the (clamped) scalar, so that check is the
 * same, and the secret it agrees is the one it needs anyway.
 */
export type PeerKeyCheck = (publicKey: Uint8Array, kind: 'mask' | 'encryption') => void;

const probeWithFixedKey: PeerKeyCheck = (publicKey) => {
  x25519SharedSecret(PROBE_PRIVATE_KEY, publicKey);
};

/**
 * Checks one advertisement: shape, roster membership, configuration hash, two usable X25519 public keys, and the
 * identity signature under the key `identityKeys` holds for the participant it names. Never throws for a bad
 * advertisement: the sender is excluded with a typed reason (SIGNATURE_INVALID, IDENTITY_KEY_MISSING, …).
 * `claimedSender` (when the transport authenticated the sender, e.g. by mTLS) must match the id inside; `checkPeerKey`
 * replaces the probe of the two public keys (PeerKeyCheck).
 */
export function checkAdvertisement(
  config: SecAggConfig,
  configHash: string,
  input: unknown,
  identityKeys: IdentityKeyDirectory,
  claimedSender?: string,
  checkPeerKey: PeerKeyCheck = probeWithFixedKey,
): Checked<KeyAdvertisement> {
  const exclude = (participantId: string, reason: ExclusionReason, detail: string): Checked<KeyAdvertisement> => ({
    ok: false,
    exclusion: { participantId, stage: 'advertise', reason, detail },
  });
  let advertisement: KeyAdvertisement;
  try {
    advertisement = parseMessage(KeyAdvertisement, input, 'key advertisement');
  } catch (error) {
    return exclude(claimedSender ?? '(unknown)', ExclusionReason.Malformed, messageOf(error));
  }
  const id = advertisement.participantId;
  if (claimedSender !== undefined && claimedSender !== id) {
    return exclude(claimedSender, ExclusionReason.Malformed, `Advertisement names ${id}, sent by ${claimedSender}.`);
  }
  if (!config.participants.includes(id)) {
    return exclude(id, ExclusionReason.NotInRoster, `${id} is not in the round's roster.`);
  }
  if (advertisement.configHash !== configHash) {
    return exclude(id, ExclusionReason.ConfigMismatch, 'The advertisement was made for another configuration.');
  }
  let maskPublicKey: Uint8Array;
  let encryptionPublicKey: Uint8Array;
  let signature: Uint8Array;
  try {
    maskPublicKey = fromBase64(advertisement.maskPublicKey, X25519_KEY_BYTES, 'maskPublicKey');
    encryptionPublicKey = fromBase64(advertisement.encryptionPublicKey, X25519_KEY_BYTES, 'encryptionPublicKey');
    signature = fromBase64(advertisement.signature, null, 'signature');
    checkPeerKey(maskPublicKey, 'mask');
    checkPeerKey(encryptionPublicKey, 'encryption');
  } catch (error) {
    return exclude(id, ExclusionReason.Malformed, messageOf(error));
  }
  const identityKey = identityKeys.get(id);
  if (identityKey === undefined) {
    return exclude(id, ExclusionReason.IdentityKeyMissing, `No identity key is known for ${id}.`);
  }
  let valid: boolean;
  try {
    const payload = advertisementPayload(configHash, id, maskPublicKey, encryptionPublicKey);
    valid = verifyWithIdentity(identityKey, payload, signature);
  } catch (error) {
    if (error instanceof SecAggException && error.code === SecAggErrorCode.UnsupportedIdentityKey) {
      return exclude(id, ExclusionReason.IdentityKeyUnsupported, error.message);
    }
    throw error;
  }
  if (!valid) {
    return exclude(id, ExclusionReason.SignatureInvalid, `The signature on ${id}'s keys does not verify.`);
  }
  return { ok: true, value: advertisement };
}

/** A thrown value's message, for exclusion details. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
