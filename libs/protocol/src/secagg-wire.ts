import { z } from 'zod';
import { Sha256Hex } from './identity';

/*
 * Secure aggregation on the silo listener (docs/secure-aggregation.md, "On the wire"). The protocol messages
 * themselves (key advertisements, share messages, masked-input headers, unmasking requests and responses) are
 * @tessera/secagg's and are parsed by it at both ends; the contract layer depends on nothing of ours, so here they
 * travel as opaque JSON objects inside these envelopes. A stage's relayed messages are read by polling: until the hub
 * has closed the previous stage the answer is `ready: false` with the stage's end.
 */

/** One round's secure-aggregation routes, under the round's own path. */
export const SECAGG_API = {
  /** GET: the round's configuration (SecAggConfig), its hash and the stage deadlines. */
  session: (studyId: string, round: number) => `/silo/v1/studies/${studyId}/rounds/${round}/secagg`,
  /** POST a KeyAdvertisement (stage 'advertise'); GET the accepted advertisements (once 'share' has begun). */
  advertisements: (studyId: string, round: number) => `/silo/v1/studies/${studyId}/rounds/${round}/secagg/keys`,
  /** POST a ShareKeysMessage (stage 'share'); GET the shares routed to the caller (once 'upload' has begun). */
  shares: (studyId: string, round: number) => `/silo/v1/studies/${studyId}/rounds/${round}/secagg/shares`,
  /** POST a masked-input frame (stage 'upload'). */
  maskedInput: (studyId: string, round: number) => `/silo/v1/studies/${studyId}/rounds/${round}/secagg/input`,
  /** GET the unmasking request (once 'unmask' has begun); POST the UnmaskingResponse. */
  unmasking: (studyId: string, round: number) => `/silo/v1/studies/${studyId}/rounds/${round}/secagg/unmasking`,
} as const;

/**
 * The protocol's stages at the hub, in order. 'complete': every answer needed is in and the round can be unmasked;
 * 'failed': too few silos survived a stage (the round closes short and is retried under the plan's rules).
 */
export const SecAggStageName = z.enum(['advertise', 'share', 'upload', 'unmask', 'complete', 'failed']);
export type SecAggStageName = z.infer<typeof SecAggStageName>;

/** A protocol message as it travels: a JSON object that @tessera/secagg parses. */
const ProtocolMessage = z.record(z.string(), z.unknown());

export const SecAggSessionView = z
  .object({
    /** The round's SecAggConfig (roster, k, t, modulus, clip, scale, vector length, round seed). */
    config: ProtocolMessage,
    configHash: Sha256Hex,
    stage: SecAggStageName,
    /** When each stage closes at the latest (ISO 8601, by the hub's clock); derived from the round's deadline. */
    deadlines: z
      .object({
        advertise: z.string().datetime(),
        share: z.string().datetime(),
        upload: z.string().datetime(),
        unmask: z.string().datetime(),
      })
      .strict(),
    /** Why the protocol failed, when stage is 'failed'. */
    failure: z.string().nullable(),
  })
  .strict();
export type SecAggSessionView = z.infer<typeof SecAggSessionView>;

/** Not yet: the previous stage is still open (poll again, at the latest when it closes). */
export const SecAggNotReady = z
  .object({ ready: z.literal(false), stage: SecAggStageName, until: z.string().datetime() })
  .strict();

/**
 * The accepted key advertisements, with the certificate (PEM) each advertiser's identity signature is checked under.
 * Those certificates come from the hub: see docs/secure-aggregation.md (threat model) for what that allows a hub
 * that runs the CA, and how an operator CA or pinned fingerprints close it.
 */
export const SecAggAdvertisementsView = z.discriminatedUnion('ready', [
  SecAggNotReady,
  z
    .object({
      ready: z.literal(true),
      advertisements: z.array(ProtocolMessage).max(256),
      identityCertificates: z.record(z.string(), z.string().max(16_384)),
    })
    .strict(),
]);
export type SecAggAdvertisementsView = z.infer<typeof SecAggAdvertisementsView>;

/** The encrypted shares routed to the caller (EncryptedShare objects). */
export const SecAggSharesView = z.discriminatedUnion('ready', [
  SecAggNotReady,
  z.object({ ready: z.literal(true), shares: z.array(ProtocolMessage).max(255) }).strict(),
]);
export type SecAggSharesView = z.infer<typeof SecAggSharesView>;

/** The one unmasking request (UnmaskingRequest), or null when the caller is not a survivor and is not asked. */
export const SecAggUnmaskingView = z.discriminatedUnion('ready', [
  SecAggNotReady,
  z.object({ ready: z.literal(true), request: ProtocolMessage.nullable() }).strict(),
]);
export type SecAggUnmaskingView = z.infer<typeof SecAggUnmaskingView>;

/** What the hub answers to an accepted protocol message. */
export const SecAggReceipt = z
  .object({ stage: SecAggStageName, accepted: z.literal(true), receivedAt: z.string().datetime() })
  .strict();
export type SecAggReceipt = z.infer<typeof SecAggReceipt>;

/* ---------- masked-input frame: 'TSM1' | u32 LE header length | header JSON | packed vector ---------- */

export const MASKED_INPUT_MAGIC = 'TSM1';
/** A masked-input header larger than this is refused before it is parsed (255 partner ids fit easily). */
export const MAX_MASKED_INPUT_HEADER_BYTES = 64 * 1024;

/** Frames a masked-input header (a MaskedInputHeader object) and its packed vector (encodeMaskedVector's bytes). */
export function encodeMaskedInputFrame(header: Record<string, unknown>, packedVector: Uint8Array): Uint8Array {
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + headerBytes.length + packedVector.length);
  out.set(new TextEncoder().encode(MASKED_INPUT_MAGIC), 0);
  new DataView(out.buffer).setUint32(4, headerBytes.length, true);
  out.set(headerBytes, 8);
  out.set(packedVector, 8 + headerBytes.length);
  return out;
}

/** Splits a masked-input frame; throws an Error naming what is wrong (the hub answers UPDATE_MALFORMED). */
export function decodeMaskedInputFrame(frame: Uint8Array): { header: unknown; packedVector: Uint8Array } {
  if (frame.length < 8 || new TextDecoder().decode(frame.subarray(0, 4)) !== MASKED_INPUT_MAGIC) {
    throw new Error(`A masked-input frame starts with '${MASKED_INPUT_MAGIC}' and a header length.`);
  }
  const length = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(4, true);
  if (length > MAX_MASKED_INPUT_HEADER_BYTES || 8 + length > frame.length) {
    throw new Error(
      `The masked-input header declares ${length} bytes; at most ${MAX_MASKED_INPUT_HEADER_BYTES} that the frame holds.`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(frame.subarray(8, 8 + length)));
  } catch {
    throw new Error('The masked-input header is not UTF-8 JSON.');
  }
  return { header, packedVector: frame.subarray(8 + length) };
}
