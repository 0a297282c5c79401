// The wire messages of one round, as zod schemas: everything a participant or the hub receives is parsed here before
// any use. All are plain JSON (keys, nonces, ciphertexts and shares in standard base64), except the masked vector
// itself, which travels as bytes beside its header (see masked-vector-codec.ts).

import { z } from 'zod';

import { ParticipantId, Sha256Hex } from './parameters';
import { SecAggErrorCode, SecAggException } from './secagg.exception';

const base64Of = (bytes: number) =>
  z
    .string()
    .length(4 * Math.ceil(bytes / 3))
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'standard base64');

/** Round 0 (AdvertiseKeys): a participant's two ephemeral X25519 public keys, signed with its identity key. */
export const KeyAdvertisement = z
  .object({
    participantId: ParticipantId,
    configHash: Sha256Hex,
    /** Public key of the pairwise-mask agreement (s_u^PK in Bonawitz et al. 2017). */
    maskPublicKey: base64Of(32),
    /** Public key of the share encryption (c_u^PK). */
    encryptionPublicKey: base64Of(32),
    /** Identity signature over (configHash, participantId, maskPublicKey, encryptionPublicKey); RSA-4096 fits. */
    signature: z
      .string()
      .min(4)
      .max(1400)
      .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'standard base64'),
  })
  .strict();
export type KeyAdvertisement = z.infer<typeof KeyAdvertisement>;

/** One neighbour's shares of the sender's self-mask seed and mask private key, AES-256-GCM encrypted to it. */
export const EncryptedShare = z
  .object({
    from: ParticipantId,
    to: ParticipantId,
    /** 96-bit GCM nonce. */
    nonce: base64Of(12),
    /** Ciphertext of the 66-byte plaintext (two 33-byte Shamir shares) followed by the 16-byte tag. */
    ciphertext: base64Of(82),
  })
  .strict();
export type EncryptedShare = z.infer<typeof EncryptedShare>;

/** Round 1 (ShareKeys): the sender's encrypted shares for its neighbours and a commitment to its self-mask seed. */
export const ShareKeysMessage = z
  .object({
    participantId: ParticipantId,
    configHash: Sha256Hex,
    /** SHA-256 binding the self-mask seed b, so the hub can tell a rebuilt seed from a corrupted one. */
    selfMaskCommitment: Sha256Hex,
    shares: z.array(EncryptedShare).max(255),
  })
  .strict();
export type ShareKeysMessage = z.infer<typeof ShareKeysMessage>;

/** Round 2 (MaskedInputCollection): the header of a masked input; the vector travels beside it. */
export const MaskedInputHeader = z
  .object({
    participantId: ParticipantId,
    configHash: Sha256Hex,
    /** The neighbours whose pairwise masks this input carries (sorted): those it exchanged shares with. */
    maskPartners: z.array(ParticipantId).max(255),
  })
  .strict();
export type MaskedInputHeader = z.infer<typeof MaskedInputHeader>;

/**
 * Round 3 (Unmasking): which participants' inputs are in the sum (their self-mask seeds are to be revealed) and which
 * dropped after sharing (their mask keys are to be revealed). One partition for everyone: a participant is never in
 * both lists, and a participant that answered refuses a later request that moves anyone between them.
 */
export const UnmaskingRequest = z
  .object({
    configHash: Sha256Hex,
    survivors: z.array(ParticipantId).max(256),
    dropped: z.array(ParticipantId).max(256),
  })
  .strict();
export type UnmaskingRequest = z.infer<typeof UnmaskingRequest>;

/** One decrypted Shamir share of `owner`'s secret (33 bytes: 32 bytes of share and the x-coordinate). */
export const RevealedShare = z.object({ owner: ParticipantId, share: base64Of(33) }).strict();
export type RevealedShare = z.infer<typeof RevealedShare>;

/** A participant's answer to the unmasking request. */
export const UnmaskingResponse = z
  .object({
    participantId: ParticipantId,
    configHash: Sha256Hex,
    selfMaskSeedShares: z.array(RevealedShare).max(255),
    maskKeyShares: z.array(RevealedShare).max(255),
  })
  .strict();
export type UnmaskingResponse = z.infer<typeof UnmaskingResponse>;

/** Parses an incoming message or throws MALFORMED_MESSAGE naming the fields at fault. */
export function parseMessage<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new SecAggException(SecAggErrorCode.MalformedMessage, `Malformed ${what}: ${issues}`);
  }
  return parsed.data;
}
