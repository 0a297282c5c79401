// The participant (agent) side of one round, as pure functions over the participant's own serialisable state:
// each step takes the state and what the hub relayed, and returns the next state and the message to send. The state
// holds the participant's secrets (base64); persist it where the agent keeps its identity key, or keep it in memory.
// Steps follow Bonawitz et al. 2017 (§5, Fig. 4) with SecAgg+ neighbourhoods (Bell et al. 2020).

import { KeyObject } from 'node:crypto';

import { checkAdvertisement, signAdvertisement } from './advertisement';
import { fromBase64, fromHex, toBase64 } from './encoding.util';
import { IdentityKeyDirectory } from './identity-signature';
import { generateX25519KeyPair, X25519_KEY_BYTES, x25519SharedSecret } from './key-agreement';
import { applyMasks, MaskTerm, pairwiseMaskKey, pairwiseMaskSign, selfMaskKey } from './mask-stream';
import {
  EncryptedShare,
  KeyAdvertisement,
  MaskedInputHeader,
  parseMessage,
  RevealedShare,
  ShareKeysMessage,
  UnmaskingRequest,
  UnmaskingResponse,
} from './messages';
import { isConnected, neighbourGraph } from './neighbour-graph';
import { compareIds, parseSecAggConfig, secAggConfigHash, SecAggConfig } from './parameters';
import { assertModularVector } from './quantisation';
import { cryptoRandom, randomBytesFrom, SecAggRandom } from './random-source';
import { ExclusionReason, ParticipantExclusion, SecAggErrorCode, SecAggException } from './secagg.exception';
import { SECRET_BYTES, SHARE_BYTES, splitSecret } from './secret-sharing';
import {
  GCM_NONCE_BYTES,
  openShare,
  sealShare,
  selfMaskCommitment,
  SHARE_PLAINTEXT_BYTES,
  shareAssociatedData,
  shareEncryptionKey,
} from './share-encryption';

/** A neighbour whose advertisement verified, with its two public keys (base64). */
export interface NeighbourKeys {
  participantId: string;
  maskPublicKey: string;
  encryptionPublicKey: string;
}

interface RoundIdentity {
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
 * Round 0, AdvertiseKeys: makes two ephemeral X25519 key pairs — one for pairwise masks, one for encrypting shares —
 * and signs their public keys, with the configuration hash, under the participant's enrolled identity key.
 */
export function advertiseKeys(options: {
  config: unknown;
  participantId: string;
  identityKey: KeyObject;
  random?: SecAggRandom;
}): { state: AdvertisedState; advertisement: KeyAdvertisement } {
  const config = parseSecAggConfig(options.config);
  if (!config.participants.includes(options.participantId)) {
    throw new SecAggException(
      SecAggErrorCode.MalformedMessage,
      `${options.participantId} is not in the round's roster.`,
    );
  }
  const random = options.random ?? cryptoRandom;
  const configHash = secAggConfigHash(config);
  const mask = generateX25519KeyPair(random);
  const encryption = generateX25519KeyPair(random);
  const advertisement = signAdvertisement(
    configHash,
    options.participantId,
    mask.publicKey,
    encryption.publicKey,
    options.identityKey,
  );
  const state: AdvertisedState = {
    phase: 'advertised',
    config,
    configHash,
    participantId: options.participantId,
    maskPrivateKey: toBase64(mask.privateKey),
    encryptionPrivateKey: toBase64(encryption.privateKey),
  };
  return { state, advertisement };
}

/**
 * Round 1, ShareKeys: verifies every neighbour's advertisement against its identity key (a neighbour whose signature
 * fails is excluded, with the reason), then splits a fresh self-mask seed and the mask private key into one share per
 * verified neighbour with threshold t and encrypts each pair of shares to its neighbour. Throws TOO_FEW_NEIGHBOURS when
 * fewer than t neighbours verify: the secrets could not be rebuilt.
 */
export async function shareKeys(
  state: AdvertisedState,
  options: { advertisements: readonly unknown[]; identityKeys: IdentityKeyDirectory; random?: SecAggRandom },
): Promise<{ state: SharedState; message: ShareKeysMessage; exclusions: ParticipantExclusion[] }> {
  assertPhase(state, 'advertised');
  const random = options.random ?? cryptoRandom;
  const { config, configHash, participantId } = state;
  const { neighbours, exclusions } = verifiedNeighbours(state, options.advertisements, options.identityKeys);
  if (neighbours.length < config.threshold) {
    throw new SecAggException(
      SecAggErrorCode.TooFewNeighbours,
      `Only ${neighbours.length} of ${participantId}'s neighbours have verified keys; the threshold is ` +
        `${config.threshold}. Excluded: ${exclusions.map((e) => `${e.participantId} (${e.reason})`).join(', ') || 'none'}.`,
    );
  }
  const seed = randomBytesFrom(random, SECRET_BYTES);
  const maskPrivateKey = fromBase64(state.maskPrivateKey, X25519_KEY_BYTES, 'maskPrivateKey');
  const encryptionPrivateKey = fromBase64(state.encryptionPrivateKey, X25519_KEY_BYTES, 'encryptionPrivateKey');
  const seedShares = await splitSecret(seed, neighbours.length, config.threshold);
  const keyShares = await splitSecret(maskPrivateKey, neighbours.length, config.threshold);
  const hashBytes = fromHex(configHash, 32, 'configHash');
  const shares = neighbours.map((neighbour, i): EncryptedShare => {
    const key = shareEncryptionKey(
      encryptionPrivateKey,
      fromBase64(neighbour.encryptionPublicKey, X25519_KEY_BYTES, 'encryptionPublicKey'),
      hashBytes,
      participantId,
      neighbour.participantId,
    );
    const plaintext = new Uint8Array(SHARE_PLAINTEXT_BYTES);
    plaintext.set(seedShares[i], 0);
    plaintext.set(keyShares[i], SHARE_BYTES);
    const nonce = randomBytesFrom(random, GCM_NONCE_BYTES);
    const ad = shareAssociatedData(hashBytes, config.roundId, participantId, neighbour.participantId);
    return {
      from: participantId,
      to: neighbour.participantId,
      nonce: toBase64(nonce),
      ciphertext: toBase64(sealShare(key, nonce, plaintext, ad)),
    };
  });
  const message: ShareKeysMessage = {
    participantId,
    configHash,
    selfMaskCommitment: selfMaskCommitment(seed, hashBytes, participantId),
    shares,
  };
  const next: SharedState = { ...state, phase: 'shared', selfMaskSeed: toBase64(seed), neighbours };
  return { state: next, message, exclusions };
}

/**
 * The graph neighbours with exactly one advertisement, and that one valid; the others with the reason they were set
 * aside. Any doubt excludes the neighbour: the hub relays everything, so it could drop a neighbour anyway, and a
 * neighbour kept on a doubtful key would receive shares it might not be entitled to.
 */
function verifiedNeighbours(
  state: AdvertisedState,
  advertisements: readonly unknown[],
  identityKeys: IdentityKeyDirectory,
): { neighbours: NeighbourKeys[]; exclusions: ParticipantExclusion[] } {
  const graphNeighbours = neighbourGraph(state.config).neighboursOf(state.participantId);
  const exclusions: ParticipantExclusion[] = [];
  const valid = new Map<string, KeyAdvertisement>();
  const rejected = new Set<string>();
  for (const input of advertisements) {
    const checked = checkAdvertisement(state.config, state.configHash, input, identityKeys);
    const id = checked.ok ? checked.value.participantId : checked.exclusion.participantId;
    if (!graphNeighbours.includes(id)) continue;
    if (!checked.ok) {
      exclusions.push(checked.exclusion);
      rejected.add(id);
    } else if (valid.has(id)) {
      exclusions.push({
        participantId: id,
        stage: 'advertise',
        reason: ExclusionReason.Duplicate,
        detail: `More than one advertisement for ${id} was relayed.`,
      });
      rejected.add(id);
    } else {
      valid.set(id, checked.value);
    }
  }
  const neighbours = graphNeighbours.flatMap((id) => {
    const a = valid.get(id);
    return a === undefined || rejected.has(id)
      ? []
      : [{ participantId: id, maskPublicKey: a.maskPublicKey, encryptionPublicKey: a.encryptionPublicKey }];
  });
  return { neighbours, exclusions };
}

/**
 * Round 2, MaskedInputCollection: decrypts (to authenticate) the shares the hub relayed from neighbours this
 * participant also shared with — its mask partners — and returns y = x + PRG(b) + Σ ±PRG(s_{u,v}) mod 2^k over them,
 * the sign given by roster order. Throws TOO_FEW_NEIGHBOURS with fewer than t partners (too few pairwise masks would
 * leave the input protected by the self-mask alone, which the hub rebuilds), SHARE_DECRYPTION_FAILED when a relayed
 * share does not authenticate. `input` is the quantised vector (see quantise()); it is not modified.
 */
export function maskInput(
  state: SharedState,
  options: { shares: readonly unknown[]; input: Uint32Array },
): { state: MaskedState; header: MaskedInputHeader; vector: Uint32Array } {
  assertPhase(state, 'shared');
  const { config, configHash, participantId } = state;
  assertModularVector(options.input, config.vectorLength, config.modulusBits, 'The input');
  const hashBytes = fromHex(configHash, 32, 'configHash');
  const encryptionPrivateKey = fromBase64(state.encryptionPrivateKey, X25519_KEY_BYTES, 'encryptionPrivateKey');
  const received = new Map<string, EncryptedShare>();
  for (const input of options.shares) {
    const share = parseMessage(EncryptedShare, input, 'encrypted share');
    if (share.to !== participantId) {
      throw new SecAggException(
        SecAggErrorCode.MalformedMessage,
        `A share for ${share.to} was relayed to ${participantId}.`,
      );
    }
    const neighbour = state.neighbours.find((n) => n.participantId === share.from);
    if (neighbour === undefined) continue; // not a neighbour this participant shared with: never a mask partner
    if (received.has(share.from)) {
      throw new SecAggException(SecAggErrorCode.MalformedMessage, `Two shares from ${share.from} were relayed.`);
    }
    decryptShare(state, encryptionPrivateKey, hashBytes, neighbour, share);
    received.set(share.from, share);
  }
  const maskPartners = [...received.keys()].sort(compareIds);
  if (maskPartners.length < config.threshold) {
    throw new SecAggException(
      SecAggErrorCode.TooFewNeighbours,
      `Only ${maskPartners.length} neighbours of ${participantId} completed sharing; the threshold is ${config.threshold}.`,
    );
  }
  const vector = options.input.slice();
  const seed = fromBase64(state.selfMaskSeed, SECRET_BYTES, 'selfMaskSeed');
  const maskPrivateKey = fromBase64(state.maskPrivateKey, X25519_KEY_BYTES, 'maskPrivateKey');
  const terms: MaskTerm[] = [{ key: selfMaskKey(seed, hashBytes, participantId), sign: 1 }];
  for (const partner of maskPartners) {
    const neighbour = state.neighbours.find((n) => n.participantId === partner);
    if (neighbour === undefined) continue;
    const peerKey = fromBase64(neighbour.maskPublicKey, X25519_KEY_BYTES, 'maskPublicKey');
    const key = pairwiseMaskKey(x25519SharedSecret(maskPrivateKey, peerKey), hashBytes, participantId, partner);
    terms.push({ key, sign: pairwiseMaskSign(participantId, partner) });
  }
  applyMasks(vector, terms, config.modulusBits);
  const next: MaskedState = {
    phase: 'masked',
    config,
    configHash,
    participantId,
    encryptionPrivateKey: state.encryptionPrivateKey,
    neighbours: state.neighbours,
    maskPartners,
    receivedShares: maskPartners.flatMap((p) => {
      const share = received.get(p);
      return share === undefined ? [] : [share];
    }),
    revealed: [],
  };
  return { state: next, header: { participantId, configHash, maskPartners }, vector };
}

/** The 66-byte plaintext of a share from `neighbour`, or SHARE_DECRYPTION_FAILED naming it. */
function decryptShare(
  state: RoundIdentity,
  encryptionPrivateKey: Uint8Array,
  hashBytes: Uint8Array,
  neighbour: NeighbourKeys,
  share: EncryptedShare,
): Uint8Array {
  const key = shareEncryptionKey(
    encryptionPrivateKey,
    fromBase64(neighbour.encryptionPublicKey, X25519_KEY_BYTES, 'encryptionPublicKey'),
    hashBytes,
    state.participantId,
    neighbour.participantId,
  );
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
  const encryptionPrivateKey = fromBase64(state.encryptionPrivateKey, X25519_KEY_BYTES, 'encryptionPrivateKey');
  const selfMaskSeedShares: RevealedShare[] = [];
  const maskKeyShares: RevealedShare[] = [];
  const revealed = new Map(state.revealed.map((r) => [r.owner, r.kind]));
  for (const share of state.receivedShares) {
    const kind = classification.get(share.from);
    if (kind === undefined) continue;
    const neighbour = state.neighbours.find((n) => n.participantId === share.from);
    if (neighbour === undefined) continue;
    const plaintext = decryptShare(state, encryptionPrivateKey, hashBytes, neighbour, share);
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

function assertPhase(state: { phase: string }, expected: string): void {
  if (state.phase !== expected) {
    throw new SecAggException(
      SecAggErrorCode.OutOfOrder,
      `This step needs a participant in phase ${expected}, not ${state.phase}.`,
    );
  }
}
