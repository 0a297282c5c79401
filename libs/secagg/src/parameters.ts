import { createHash } from 'node:crypto';
import { z } from 'zod';

import { encodeTuple } from './encoding.util';
import { assertNoWrap } from './quantisation';
import { SecAggErrorCode, SecAggException } from './secagg.exception';

/** Version label bound into every hash, signature, key derivation and associated data of this protocol. */
export const SECAGG_PROTOCOL = 'tessera-secagg/1';

/**
 * Largest roster. Shamir sharing over GF(2^8) (shamir-secret-sharing) gives at most 255 shares per secret, and a
 * participant shares with each of its neighbours, so a neighbourhood has at most 255 members.
 */
export const MAX_PARTICIPANTS = 256;

/** Largest vector, in parameters (2^28 ≈ 268M: 1 GiB as Uint32Array). */
export const MAX_VECTOR_LENGTH = 2 ** 28;

/** A participant id (a silo UUID in Tessera): printable ASCII, compared by code unit to order the roster. */
export const ParticipantId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'participant id');

/** Lowercase hex SHA-256 digest. */
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits');

/**
 * Everything every participant must agree on for one round. All participants sign its hash inside their key
 * advertisements, so a hub that showed two participants different rosters, graphs or parameters is caught by the
 * first neighbour that verifies an advertisement.
 */
export const SecAggConfig = z
  .object({
    /** The round this configuration is for (the hub's round id): binds every message to one round. */
    roundId: z.string().min(1).max(200),
    /** The roster, sorted by code unit and without duplicates: the only possible participants. */
    participants: z.array(ParticipantId).min(3).max(MAX_PARTICIPANTS),
    /** Neighbourhood size k (SecAgg+ degree); k = n − 1 is the complete graph of Bonawitz et al. 2017. */
    neighbourCount: z.number().int().min(2),
    /** Shamir threshold t: secrets are recoverable from t shares, hidden from t − 1. */
    threshold: z.number().int().min(2),
    /** Integers are summed modulo 2^modulusBits. */
    modulusBits: z.number().int().min(2).max(32),
    /** L2 clipping norm C of each input before quantisation. */
    clipNorm: z.number().positive().finite(),
    /** Quantisation scale s (one integer step = 1/s). */
    scale: z.number().positive().finite(),
    /** Number of parameters m of every input vector. */
    vectorLength: z.number().int().min(1).max(MAX_VECTOR_LENGTH),
    /** Public 32-byte seed (hex) from which the neighbour graph is derived. */
    roundSeed: Sha256Hex,
  })
  .strict();
export type SecAggConfig = z.infer<typeof SecAggConfig>;

/**
 * Parses and checks a round configuration: the shape (zod), then the rules between fields. Throws INVALID_PARAMETERS
 * (with the zod issues in the message) or MODULUS_TOO_SMALL when n inputs could wrap modulo 2^k.
 */
export function parseSecAggConfig(input: unknown): SecAggConfig {
  const parsed = SecAggConfig.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new SecAggException(SecAggErrorCode.InvalidParameters, `Invalid secure-aggregation configuration: ${issues}`);
  }
  const config = parsed.data;
  assertRosterCanonical(config.participants);
  const n = config.participants.length;
  const k = config.neighbourCount;
  if (k > n - 1) {
    throw invalid(`neighbourCount ${k} exceeds n − 1 = ${n - 1} (the complete graph).`);
  }
  if (k % 2 === 1 && n % 2 === 1) {
    throw invalid(`A ${k}-regular graph on ${n} participants does not exist (n·k must be even): choose an even k.`);
  }
  if (config.threshold > k) {
    throw invalid(`threshold ${config.threshold} exceeds the neighbourhood size ${k}: no secret could be rebuilt.`);
  }
  assertNoWrap({ ...config, participantCount: n });
  return config;
}

/** Builds a configuration from an unsorted roster (sorted here), then checks it like parseSecAggConfig. */
export function createSecAggConfig(
  input: Omit<SecAggConfig, 'participants'> & { participants: readonly string[] },
): SecAggConfig {
  return parseSecAggConfig({ ...input, participants: [...input.participants].sort(compareIds) });
}

/** The roster's order: by UTF-16 code unit (byte order for the ASCII ids allowed), locale-independent. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function assertRosterCanonical(participants: readonly string[]): void {
  for (let i = 1; i < participants.length; i++) {
    if (compareIds(participants[i - 1]!, participants[i]!) >= 0) {
      throw invalid(
        `participants must be sorted without duplicates; ${JSON.stringify(participants[i - 1])} comes before ` +
          `${JSON.stringify(participants[i])}.`,
      );
    }
  }
}

function invalid(message: string): SecAggException {
  return new SecAggException(SecAggErrorCode.InvalidParameters, message);
}

/**
 * SHA-256 (hex) of the configuration's unambiguous encoding, labelled with the protocol version. Every participant
 * signs it; every key derivation and every share's associated data includes it.
 */
export function secAggConfigHash(config: SecAggConfig): string {
  const encoded = encodeTuple(`${SECAGG_PROTOCOL} config`, [
    config.roundId,
    config.participants.length,
    ...config.participants,
    config.neighbourCount,
    config.threshold,
    config.modulusBits,
    config.clipNorm,
    config.scale,
    config.vectorLength,
    config.roundSeed,
  ]);
  return createHash('sha256').update(encoded).digest('hex');
}

/**
 * The smallest threshold that stops a hub from rebuilding both secrets of one participant when it lies about who
 * dropped and `colluding` of that participant's k neighbours help it: each honest neighbour reveals only one kind of
 * share per participant, so both kinds need 2t ≤ k + colluding shares; t = ⌊(k + colluding)/2⌋ + 1 rules that out.
 * For the complete graph with fewer than n/3 colluders this is the t > 2n/3 regime of Bonawitz et al. 2017 (§6).
 * Throws INVALID_PARAMETERS when no threshold ≤ k achieves it.
 */
export function recommendedThreshold(neighbourCount: number, colluding = 0): number {
  const t = Math.floor((neighbourCount + colluding) / 2) + 1;
  if (!Number.isInteger(neighbourCount) || neighbourCount < 2 || !Number.isInteger(colluding) || colluding < 0) {
    throw invalid(`neighbourCount must be an integer ≥ 2 and colluding an integer ≥ 0.`);
  }
  if (t > neighbourCount) {
    throw invalid(`No threshold ≤ ${neighbourCount} tolerates ${colluding} colluding neighbours.`);
  }
  return Math.max(2, t);
}

/** How many of a participant's k neighbours may drop before its secrets can no longer be rebuilt: k − t. */
export function toleratedNeighbourDropouts(neighbourCount: number, threshold: number): number {
  return neighbourCount - threshold;
}
