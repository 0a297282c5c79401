// Round 3 on the participant's side: which shares to reveal, and the checks that keep a hub from obtaining both
// secrets of anyone (Bonawitz et al. 2017, §4–5: revealing both b_u and s_u of one participant unmasks its input).

import { fromHex, toBase64 } from './encoding.util';
import { parseMessage, RevealedShare, UnmaskingRequest, UnmaskingResponse } from './messages';
import { isConnected, neighbourGraph } from './neighbour-graph';
import { compareIds } from './parameters';
import { assertPhase, decryptShare, lazyPrivateKey, MaskedState, shareKeyWith, ShareKind } from './participant-state';
import { SecAggErrorCode, SecAggException } from './secagg.exception';
import { SHARE_BYTES } from './secret-sharing';

/**
 * Round 3, Unmasking: for every mask partner the request lists as a survivor, reveals this participant's share of
 * that partner's self-mask seed; for every partner listed as dropped, its share of that partner's mask private key;
 * never both for one partner. Refuses (CONFLICTING_REVEAL_REQUEST) a request that lists anyone in both lists, does not
 * list this participant as a survivor, or moves a partner to the other list than an earlier request did; refuses
 * (TOO_FEW_SURVIVORS) fewer than t survivors and (SURVIVOR_GRAPH_DISCONNECTED) survivors whose neighbour graph falls
 * apart. Repeating the same request is answered alike (a hub that restarted may ask again).
 */
export function revealShares(state: MaskedState, input: unknown): { state: MaskedState; response: UnmaskingResponse } {
  assertPhase(state, 'masked');
  const request = parseMessage(UnmaskingRequest, input, 'unmasking request');
  const { configHash, participantId } = state;
  if (request.configHash !== configHash) {
    throw new SecAggException(SecAggErrorCode.ConfigMismatch, 'The unmasking request is for another configuration.');
  }
  const classification = classify(request, state);
  const hashBytes = fromHex(configHash, 32, 'configHash');
  const encryptionPrivateKey = lazyPrivateKey(state.encryptionPrivateKey, 'encryptionPrivateKey');
  const selfMaskSeedShares: RevealedShare[] = [];
  const maskKeyShares: RevealedShare[] = [];
  const revealed = new Map(state.revealed.map((r) => [r.owner, r.kind]));
  for (const share of state.receivedShares) {
    const kind = classification.get(share.from);
    if (kind === undefined) continue;
    const neighbour = state.neighbours.find((n) => n.participantId === share.from);
    if (neighbour === undefined) continue;
    const plaintext = decryptShare(
      state,
      shareKeyWith(state, encryptionPrivateKey, hashBytes, neighbour),
      hashBytes,
      share,
    );
    const part = kind === 'selfMaskSeed' ? plaintext.subarray(0, SHARE_BYTES) : plaintext.subarray(SHARE_BYTES);
    (kind === 'selfMaskSeed' ? selfMaskSeedShares : maskKeyShares).push({ owner: share.from, share: toBase64(part) });
    revealed.set(share.from, kind);
  }
  const next: MaskedState = {
    ...state,
    revealed: [...revealed].map(([owner, kind]) => ({ owner, kind })).sort((a, b) => compareIds(a.owner, b.owner)),
  };
  return { state: next, response: { participantId, configHash, selfMaskSeedShares, maskKeyShares } };
}

/** Checks the request's partition and returns the kind of share to reveal per owner. */
function classify(request: UnmaskingRequest, state: MaskedState): Map<string, ShareKind> {
  const { config, participantId } = state;
  const conflict = (message: string): SecAggException =>
    new SecAggException(SecAggErrorCode.ConflictingRevealRequest, message);
  const survivors = new Set(request.survivors);
  const dropped = new Set(request.dropped);
  if (survivors.size !== request.survivors.length || dropped.size !== request.dropped.length) {
    throw conflict('The unmasking request lists a participant twice.');
  }
  for (const id of [...survivors, ...dropped]) {
    if (!config.participants.includes(id)) {
      throw new SecAggException(SecAggErrorCode.MalformedMessage, `${id} is not in the round's roster.`);
    }
    if (survivors.has(id) && dropped.has(id)) {
      throw conflict(`${id} is listed both as a survivor and as dropped: both of its secrets would be revealed.`);
    }
  }
  if (!survivors.has(participantId)) {
    throw conflict(`${participantId} is not listed as a survivor, yet it is asked to help unmask.`);
  }
  if (survivors.size < config.threshold) {
    throw new SecAggException(
      SecAggErrorCode.TooFewSurvivors,
      `Only ${survivors.size} survivors; at least ${config.threshold} are required.`,
    );
  }
  const graph = neighbourGraph(config);
  const edges = new Map([...survivors].map((id) => [id, graph.neighboursOf(id)]));
  if (!isConnected([...survivors], edges)) {
    throw new SecAggException(
      SecAggErrorCode.SurvivorGraphDisconnected,
      'The survivors fall into separate groups of the neighbour graph: unmasking would reveal partial sums.',
    );
  }
  const earlier = new Map(state.revealed.map((r) => [r.owner, r.kind]));
  const kinds = new Map<string, ShareKind>();
  for (const owner of state.maskPartners) {
    const kind: ShareKind | undefined = survivors.has(owner)
      ? 'selfMaskSeed'
      : dropped.has(owner)
        ? 'maskKey'
        : undefined;
    if (kind === undefined) continue;
    const before = earlier.get(owner);
    if (before !== undefined && before !== kind) {
      throw conflict(
        `${owner} was earlier treated as ${before === 'selfMaskSeed' ? 'a survivor' : 'dropped'}; ` +
          'revealing the other share would expose its input.',
      );
    }
    kinds.set(owner, kind);
  }
  return kinds;
}
