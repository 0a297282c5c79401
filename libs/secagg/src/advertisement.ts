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
 * Checks one advertisement: shape, roster membership, configuration hash, two usable X25519 public keys, and the
 * identity signature under the key `identityKeys` holds for the participant it names. Never throws for a bad
 * advertisement: the sender is excluded with a typed reason (SIGNATURE_INVALID, IDENTITY_KEY_MISSING, …).
 * `claimedSender` (when the transport authenticated the sender, e.g. by mTLS) must match the id inside.
 */
export function checkAdvertisement(
  config: SecAggConfig,
  configHash: string,
  input: unknown,
  identityKeys: IdentityKeyDirectory,
  claimedSender?: string,
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
    x25519SharedSecret(PROBE_PRIVATE_KEY, maskPublicKey);
    x25519SharedSecret(PROBE_PRIVATE_KEY, encryptionPublicKey);
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
