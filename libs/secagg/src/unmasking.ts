// The hub's side of round 3 (Unmasking), pure: decide which shares to ask for given who uploaded, check the answers,
// and remove the masks. For every participant the plan asks for exactly one kind of share — the self-mask seed of a
// survivor, or the mask key of a participant that dropped after sharing — so no participant's input is ever exposed
// (Bonawitz et al. 2017, §4: revealing both b_u and s_u^SK of one participant would unmask its input).

import { Checked, messageOf } from './advertisement';
import { fromBase64, fromHex } from './encoding.util';
import { ShareRouting } from './hub-collection';
import { X25519_KEY_BYTES, x25519PrivateKeyObject, x25519PublicKey, x25519SharedSecret } from './key-agreement';
import { applyMasks, MaskTerm, pairwiseMaskKey, pairwiseMaskSign, selfMaskKey } from './mask-stream';
import { KeyAdvertisement, MaskedInputHeader, parseMessage, UnmaskingRequest, UnmaskingResponse } from './messages';
import { isConnected } from './neighbour-graph';
import { compareIds, secAggConfigHash, SecAggConfig } from './parameters';
import { assertModularVector } from './quantisation';
import { ExclusionReason, SecAggErrorCode, SecAggException } from './secagg.exception';
import { combineShares, SHARE_BYTES } from './secret-sharing';
import { selfMaskCommitment } from './share-encryption';
import type { ShareKind } from './participant-state';

/** A secret to rebuild: whose, which kind, and who holds a share of it among the survivors. */
export interface Reconstruction {
  owner: string;
  kind: ShareKind;
  holders: string[];
}

/** What the hub asks for and what it will need, decided once the upload stage is closed. */
export interface UnmaskingPlan {
  configHash: string;
  /** Shares needed per secret (the configuration's t). */
  threshold: number;
  /** The same request for every survivor. */
  request: UnmaskingRequest;
  reconstructions: Reconstruction[];
}

/**
 * Round 2 closed: plans the unmasking from the uploads accepted into the sum. Survivors are the uploaders; dropped
 * are the sharers that did not upload but are mask partners of a survivor (the others' keys are not needed and are
 * not asked for). Throws TOO_FEW_SURVIVORS when fewer than t uploaded or some needed secret has fewer than t holders
 * among the survivors, and SURVIVOR_GRAPH_DISCONNECTED when the survivors' mask graph falls apart (the hub would
 * learn partial sums).
 */
export function planUnmasking(
  config: SecAggConfig,
  routing: ShareRouting,
  uploads: readonly MaskedInputHeader[],
): UnmaskingPlan {
  const configHash = secAggConfigHash(config);
  if (routing.configHash !== configHash) {
    throw new SecAggException(SecAggErrorCode.ConfigMismatch, 'The share routing belongs to another configuration.');
  }
  const sharers = new Map(routing.sharers.map((s) => [s.participantId, s]));
  const survivors = [...new Set(uploads.map((u) => u.participantId))].sort(compareIds);
  if (survivors.length !== uploads.length) {
    throw new SecAggException(SecAggErrorCode.OutOfOrder, 'A participant uploaded twice.');
  }
  for (const id of survivors) {
    if (!sharers.has(id)) {
      throw new SecAggException(SecAggErrorCode.OutOfOrder, `${id} uploaded without completing sharing.`);
    }
  }
  if (survivors.length < config.threshold) {
    throw new SecAggException(
      SecAggErrorCode.TooFewSurvivors,
      `Only ${survivors.length} masked inputs arrived; at least t = ${config.threshold} are required.`,
    );
  }
  const alive = new Set(survivors);
  const partnersOf = (id: string): string[] => sharers.get(id)?.maskPartners ?? [];
  const edges = new Map(survivors.map((id) => [id, partnersOf(id).filter((p) => alive.has(p))]));
  if (!isConnected(survivors, edges)) {
    throw new SecAggException(
      SecAggErrorCode.SurvivorGraphDisconnected,
      'The survivors are not connected by pairwise masks: unmasking would reveal the sums of separate groups.',
    );
  }
  const dropped = [...sharers.keys()]
    .filter((id) => !alive.has(id) && partnersOf(id).some((p) => alive.has(p)))
    .sort(compareIds);
  const reconstructions: Reconstruction[] = [
    ...survivors.map((owner) => ({ owner, kind: 'selfMaskSeed' as const })),
    ...dropped.map((owner) => ({ owner, kind: 'maskKey' as const })),
  ].map(({ owner, kind }) => {
    const holders = (sharers.get(owner)?.holders ?? []).filter((h) => alive.has(h));
    if (holders.length < config.threshold) {
      throw new SecAggException(
        SecAggErrorCode.TooFewSurvivors,
        `Only ${holders.length} surviving participants hold shares of ${owner}'s ${kind}; t = ${config.threshold}.`,
      );
    }
    return { owner, kind, holders };
  });
  return { configHash, threshold: config.threshold, request: { configHash, survivors, dropped }, reconstructions };
}

/**
 * Checks one unmasking response: from a survivor, for this configuration, and revealing only shares the plan asks
 * for from that responder — a share of the wrong kind (a survivor's mask key, a dropped participant's seed) or of a
 * secret it does not hold is refused with UNREQUESTED_SHARE, so the hub's state never holds both kinds for anyone.
 */
export function checkUnmaskingResponse(plan: UnmaskingPlan, input: unknown): Checked<UnmaskingResponse> {
  const exclude = (id: string, reason: ExclusionReason, detail: string): Checked<UnmaskingResponse> => ({
    ok: false,
    exclusion: { participantId: id, stage: 'unmask', reason, detail },
  });
  let response: UnmaskingResponse;
  try {
    response = parseMessage(UnmaskingResponse, input, 'unmasking response');
  } catch (error) {
    return exclude('(unknown)', ExclusionReason.Malformed, messageOf(error));
  }
  const id = response.participantId;
  if (response.configHash !== plan.configHash) {
    return exclude(id, ExclusionReason.ConfigMismatch, 'The response was made for another configuration.');
  }
  if (!plan.request.survivors.includes(id)) {
    return exclude(id, ExclusionReason.MissedPreviousStage, `${id} is not a survivor and was not asked.`);
  }
  const asked = (kind: ShareKind, owner: string): boolean =>
    plan.reconstructions.some((r) => r.kind === kind && r.owner === owner && r.holders.includes(id));
  const seen = new Set<string>();
  for (const [kind, shares] of [
    ['selfMaskSeed', response.selfMaskSeedShares],
    ['maskKey', response.maskKeyShares],
  ] as const) {
    for (const { owner } of shares) {
      if (!asked(kind, owner) || seen.has(owner)) {
        return exclude(
          id,
          ExclusionReason.UnrequestedShare,
          `${id} revealed an unrequested ${kind} share of ${owner}.`,
        );
      }
      seen.add(owner);
    }
  }
  return { ok: true, value: response };
}

/** Whether t shares of every needed secret have arrived, and which are still short. */
export function unmaskingProgress(
  plan: UnmaskingPlan,
  responses: readonly UnmaskingResponse[],
): { ready: boolean; missing: { owner: string; kind: ShareKind; have: number; need: number }[]; need: number } {
  const need = plan.threshold;
  const missing = plan.reconstructions.flatMap((r) => {
    const have = sharesFor(r, responses).length;
    return have < need ? [{ owner: r.owner, kind: r.kind, have, need }] : [];
  });
  return { ready: missing.length === 0, missing, need };
}

/**
 * Removes every mask from the sum of the survivors' masked inputs and returns Σ x_u mod 2^k over the survivors:
 * subtracts each survivor's self-mask (from its rebuilt seed, checked against its commitment) and, for each dropped
 * participant, the pairwise masks its surviving partners added with it (from its rebuilt mask key, checked against
 * its advertised public key). Throws INSUFFICIENT_SHARES before t shares of each secret are in, and
 * RECONSTRUCTION_MISMATCH when a rebuilt secret fails its check (a corrupted share). `maskedSum` is not modified.
 */
export async function unmaskSum(
  config: SecAggConfig,
  context: { routing: ShareRouting; advertised: readonly KeyAdvertisement[]; plan: UnmaskingPlan },
  responses: readonly UnmaskingResponse[],
  maskedSum: Uint32Array,
): Promise<Uint32Array> {
  const { routing, advertised, plan } = context;
  const configHash = secAggConfigHash(config);
  if (plan.configHash !== configHash || routing.configHash !== configHash) {
    throw new SecAggException(SecAggErrorCode.ConfigMismatch, 'The plan or routing belongs to another configuration.');
  }
  assertModularVector(maskedSum, config.vectorLength, config.modulusBits, 'The masked sum');
  const progress = unmaskingProgress(plan, responses);
  if (!progress.ready) {
    throw new SecAggException(
      SecAggErrorCode.InsufficientShares,
      `Shares still missing: ${progress.missing.map((m) => `${m.owner} ${m.kind} ${m.have}/${m.need}`).join(', ')}.`,
    );
  }
  const hashBytes = fromHex(configHash, 32, 'configHash');
  const survivors = new Set(plan.request.survivors);
  const terms: MaskTerm[] = [];
  for (const r of plan.reconstructions) {
    const secret = await combineShares(sharesFor(r, responses));
    if (r.kind === 'selfMaskSeed') {
      const commitment = routing.sharers.find((s) => s.participantId === r.owner)?.selfMaskCommitment;
      if (selfMaskCommitment(secret, hashBytes, r.owner) !== commitment) {
        throw mismatch(`The rebuilt self-mask seed of ${r.owner} does not match its commitment.`);
      }
      terms.push({ key: selfMaskKey(secret, hashBytes, r.owner), sign: -1 });
    } else {
      terms.push(...droppedMaskTerms(hashBytes, r.owner, secret, { routing, advertised, survivors }));
    }
  }
  // Every secret is checked before the first mask is removed; then one sweep removes them all.
  const result = maskedSum.slice();
  applyMasks(result, terms, config.modulusBits);
  return result;
}

/** The masks that remove, from the sum, the pairwise masks each surviving partner of `owner` added with it. */
function droppedMaskTerms(
  hashBytes: Uint8Array,
  owner: string,
  maskPrivateKey: Uint8Array,
  context: { routing: ShareRouting; advertised: readonly KeyAdvertisement[]; survivors: ReadonlySet<string> },
): MaskTerm[] {
  const publicKeyOf = (id: string): Uint8Array => {
    const advertisement = context.advertised.find((a) => a.participantId === id);
    if (advertisement === undefined) throw mismatch(`No advertised mask key for ${id}.`);
    return fromBase64(advertisement.maskPublicKey, X25519_KEY_BYTES, 'maskPublicKey');
  };
  if (!equalBytes(x25519PublicKey(maskPrivateKey), publicKeyOf(owner))) {
    throw mismatch(`The rebuilt mask key of ${owner} does not match its advertised public key.`);
  }
  const terms: MaskTerm[] = [];
  const maskKey = x25519PrivateKeyObject(maskPrivateKey); // one key object for every surviving partner
  for (const sharer of context.routing.sharers) {
    const v = sharer.participantId;
    if (!context.survivors.has(v) || !sharer.maskPartners.includes(owner)) continue;
    const key = pairwiseMaskKey(x25519SharedSecret(maskKey, publicKeyOf(v)), hashBytes, v, owner);
    // v added sign(v, owner)·PRG: the opposite sign removes it.
    terms.push({ key, sign: pairwiseMaskSign(v, owner) === 1 ? -1 : 1 });
  }
  return terms;
}

/** The revealed shares of one secret, decoded, from the responders the plan lists as its holders. */
function sharesFor(r: Reconstruction, responses: readonly UnmaskingResponse[]): Uint8Array[] {
  const shares: Uint8Array[] = [];
  const seen = new Set<string>();
  for (const response of responses) {
    if (!r.holders.includes(response.participantId) || seen.has(response.participantId)) continue;
    const list = r.kind === 'selfMaskSeed' ? response.selfMaskSeedShares : response.maskKeyShares;
    const revealed = list.find((s) => s.owner === r.owner);
    if (revealed === undefined) continue;
    seen.add(response.participantId);
    shares.push(fromBase64(revealed.share, SHARE_BYTES, 'share'));
  }
  return shares;
}

function mismatch(message: string): SecAggException {
  return new SecAggException(SecAggErrorCode.ReconstructionMismatch, message);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
