import type { SecureAggregationPlan } from '@tessera/protocol';
import { distributedNoiseMaxScale } from '@tessera/dp';
import {
  checkAdvertisement,
  collectAdvertisements,
  createSecAggConfig,
  maxSafeScale,
  planUnmasking,
  routeShares,
  SecAggErrorCode,
  SecAggException,
  secAggConfigHash,
  type IdentityKeyDirectory,
  type KeyAdvertisement,
  type MaskedInputHeader,
  type ParticipantExclusion,
  type SecAggConfig,
  type ShareKeysMessage,
  type ShareRouting,
  type UnmaskingPlan,
} from '@tessera/secagg';

/*
 * The hub's decisions at each stage boundary of a secure-aggregation round, as pure functions over what the database
 * holds (docs/secure-aggregation.md, "In the hub"). The service runs them under the session's row lock and stores
 * what they return; a stage that cannot go on returns a failure, never a partial result.
 */

/** Fractions of a round's span (open → deadline) at which each stage closes at the latest. */
export const STAGE_FRACTIONS = { advertise: 0.25, share: 0.4, upload: 0.85, unmask: 1 } as const;

export interface StageDeadlines {
  advertise: Date;
  share: Date;
  upload: Date;
  unmask: Date;
}

/**
 * Each stage's deadline from the round's: key advertisement and sharing are quick and come first (25% and 40% of the
 * span: an agent must first see the task, and a stage closes as soon as every silo has sent, so only a dropout waits
 * that long), training and the masked upload take most of the rest (until 85%), unmasking what remains.
 */
export function stageDeadlines(openedAt: Date, deadlineAt: Date): StageDeadlines {
  const start = openedAt.getTime();
  const span = Math.max(0, deadlineAt.getTime() - start);
  const at = (f: number) => new Date(start + Math.floor(span * f));
  return {
    advertise: at(STAGE_FRACTIONS.advertise),
    share: at(STAGE_FRACTIONS.share),
    upload: at(STAGE_FRACTIONS.upload),
    unmask: deadlineAt,
  };
}

/**
 * A round's protocol configuration from the plan and the round's roster (the silos given the task). The neighbourhood
 * is the plan's k, or the complete graph; the scale is the finest that cannot wrap for this roster (maxSafeScale).
 * Throws SecAggException (INVALID_PARAMETERS, MODULUS_TOO_SMALL) when this roster cannot run the plan's parameters.
 */
export function sessionConfig(input: {
  roundId: string;
  roster: readonly string[];
  plan: SecureAggregationPlan;
  vectorLength: number;
  roundSeed: string;
  /**
   * z of a plan with distributed noise (privacy.noise 'distributed'), null without: the scale then leaves room for the
   * n noise shares' tail (distributedNoiseMaxScale), so the noisy sum cannot wrap except with probability 2^-40.
   */
  distributedNoiseMultiplier?: number | null;
}): SecAggConfig {
  const n = input.roster.length;
  const { threshold, modulusBits, clipNorm } = input.plan;
  const neighbourCount = input.plan.neighbourCount ?? n - 1;
  if (threshold + 1 > n) {
    throw new SecAggException(
      SecAggErrorCode.TooFewSurvivors,
      `${n} silos are in the round; threshold t = ${threshold} needs at least ${threshold + 1}.`,
    );
  }
  const z = input.distributedNoiseMultiplier ?? null;
  const scale =
    z === null
      ? maxSafeScale({ participantCount: n, clipNorm, modulusBits })
      : distributedNoiseMaxScale({
          participantCount: n,
          clipNorm,
          modulusBits,
          dimension: input.vectorLength,
          shares: threshold,
          noiseMultiplier: z,
        });
  if (!(scale > 0)) {
    throw new SecAggException(
      SecAggErrorCode.ModulusTooSmall,
      `${n} silos' updates clipped to ${clipNorm}${z === null ? '' : ` with their noise shares (z = ${z})`} cannot ` +
        `fit 2^${modulusBits} at any scale: raise modulusBits.`,
    );
  }
  return createSecAggConfig({
    roundId: input.roundId,
    participants: input.roster,
    neighbourCount,
    threshold,
    modulusBits,
    clipNorm,
    scale,
    vectorLength: input.vectorLength,
    roundSeed: input.roundSeed,
  });
}

/** A stage boundary's outcome: the values to store, or why the round cannot go on. */
export type StageOutcome<T> = { ok: true; value: T } | { ok: false; failure: string };

function failureOf(error: unknown): string {
  if (error instanceof SecAggException) return `${error.code}: ${error.message}`;
  throw error;
}

/**
 * Closes 'advertise': checks every submitted advertisement (its signature under the silo's identity key included).
 * The exclusions are returned whether or not enough silos remain, for the audit trail.
 */
export function closeAdvertise(
  config: SecAggConfig,
  submitted: readonly unknown[],
  identityKeys: IdentityKeyDirectory,
): { outcome: StageOutcome<KeyAdvertisement[]>; exclusions: ParticipantExclusion[] } {
  try {
    const { advertised, exclusions } = collectAdvertisements(config, submitted, identityKeys);
    return { outcome: { ok: true, value: advertised }, exclusions };
  } catch (error) {
    const failure = failureOf(error);
    // collectAdvertisements refuses only after checking every advertisement: check them again for their reasons.
    const configHash = secAggConfigHash(config);
    const exclusions = submitted.flatMap((input) => {
      const checked = checkAdvertisement(config, configHash, input, identityKeys);
      return checked.ok ? [] : [checked.exclusion];
    });
    return { outcome: { ok: false, failure }, exclusions };
  }
}

/**
 * Closes 'share': routes the accepted share messages (each already passed checkShareMessage on arrival). Fails at once
 * with TOO_FEW_SURVIVORS when fewer than t sharers have t mask partners: only those can mask (maskInput refuses the
 * others), and fewer than t masked inputs can never be unmasked, so waiting for the upload stage's deadline would
 * only delay the same failure (with the complete graph: fewer than t + 1 sharers).
 */
export function closeShare(config: SecAggConfig, messages: readonly ShareKeysMessage[]): StageOutcome<ShareRouting> {
  let routing: ShareRouting;
  try {
    routing = routeShares(config, messages);
  } catch (error) {
    return { ok: false, failure: failureOf(error) };
  }
  const canMask = routing.sharers.filter((s) => s.maskPartners.length >= config.threshold).length;
  if (canMask < config.threshold) {
    return {
      ok: false,
      failure:
        `${SecAggErrorCode.TooFewSurvivors}: Only ${canMask} of the ${routing.sharers.length} participants that ` +
        `completed sharing have t = ${config.threshold} mask partners; fewer than t masked inputs cannot be unmasked.`,
    };
  }
  return { ok: true, value: routing };
}

/** Closes 'upload': plans the unmasking from the masked inputs in the sum. */
export function closeUpload(
  config: SecAggConfig,
  routing: ShareRouting,
  uploads: readonly MaskedInputHeader[],
): StageOutcome<UnmaskingPlan> {
  try {
    return { ok: true, value: planUnmasking(config, routing, uploads) };
  } catch (error) {
    return { ok: false, failure: failureOf(error) };
  }
}
