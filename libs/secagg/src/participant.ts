// The participant (agent) side of one round, as pure functions over the participant's own serialisable state:
// each step takes the state and what the hub relayed, and returns the next state and the message to send. The state
// holds the participant's secrets (base64); persist it where the agent keeps its identity key, or keep it in memory.
// Steps follow Bonawitz et al. 2017 (§5, Fig. 4) with SecAgg+ neighbourhoods (Bell et al. 2020).

import { KeyObject } from 'node:crypto';

import { checkAdvertisement, PeerKeyCheck, signAdvertisement } from './advertisement';
import { fromBase64, fromHex, toBase64 } from './encoding.util';
import { IdentityKeyDirectory } from './identity-signature';
import { generateX25519KeyPair, X25519_KEY_BYTES, x25519PrivateKeyObject, x25519SharedSecret } from './key-agreement';
import { applyMasks, MaskTerm, pairwiseMaskKey, pairwiseMaskSign, selfMaskKey } from './mask-stream';
import { EncryptedShare, KeyAdvertisement, MaskedInputHeader, parseMessage, ShareKeysMessage } from './messages';
import { neighbourGraph } from './neighbour-graph';
import { compareIds, parseSecAggConfig, secAggConfigHash } from './parameters';
import {
  AdvertisedState,
  assertPhase,
  decryptShare,
  lazyPrivateKey,
  MaskedState,
  NeighbourKeys,
  SharedState,
  shareKeyWith,
} from './participant-state';
import { assertModularVector } from './quantisation';
import { cryptoRandom, randomBytesFrom, SecAggRandom } from './random-source';
import { ExclusionReason, ParticipantExclusion, SecAggErrorCode, SecAggException } from './secagg.exception';
import { SECRET_BYTES, SHARE_BYTES, splitSecret } from './secret-sharing';
import {
  GCM_NONCE_BYTES,
  sealShare,
  selfMaskCommitment,
  SHARE_PLAINTEXT_BYTES,
  shareAssociatedData,
  shareEncryptionKeyFromSecret,
} from './share-encryption';

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
  const maskPrivateKey = fromBase64(state.maskPrivateKey, X25519_KEY_BYTES, 'maskPrivateKey');
  const encryptionPrivateKey = fromBase64(state.encryptionPrivateKey, X25519_KEY_BYTES, 'encryptionPrivateKey');
  // Each neighbour's two public keys are checked by agreeing them with this participant's own keys (PeerKeyCheck):
  // the secrets are the ones the share encryption and the pairwise masks need, so each is agreed once per round.
  const keyObjects = {
    mask: x25519PrivateKeyObject(maskPrivateKey),
    encryption: x25519PrivateKeyObject(encryptionPrivateKey),
  };
  const agreed = new Map<string, Uint8Array>();
  const agreeOnce = (kind: 'mask' | 'encryption', publicKey: Uint8Array): Uint8Array => {
    const id = `${kind} ${toBase64(publicKey)}`;
    let secret = agreed.get(id);
    if (secret === undefined) {
      secret = x25519SharedSecret(keyObjects[kind], publicKey);
      agreed.set(id, secret);
    }
    return secret;
  };
  const { neighbours: verified, exclusions } = verifiedNeighbours(
    state,
    options.advertisements,
    options.identityKeys,
    (publicKey, kind) => agreeOnce(kind, publicKey),
  );
  if (verified.length < config.threshold) {
    throw new SecAggException(
      SecAggErrorCode.TooFewNeighbours,
      `Only ${verified.length} of ${participantId}'s neighbours have verified keys; the threshold is ` +
        `${config.threshold}. Excluded: ${exclusions.map((e) => `${e.participantId} (${e.reason})`).join(', ') || 'none'}.`,
    );
  }
  const seed = randomBytesFrom(random, SECRET_BYTES);
  const seedShares = await splitSecret(seed, verified.length, config.threshold);
  const keyShares = await splitSecret(maskPrivateKey, verified.length, config.threshold);
  const hashBytes = fromHex(configHash, 32, 'configHash');
  const pairwiseMaskKeys: Record<string, string> = {};
  const shareKeysByNeighbour = verified.map((neighbour) => {
    const encryptionSecret = agreeOnce(
      'encryption',
      fromBase64(neighbour.encryptionPublicKey, X25519_KEY_BYTES, 'encryptionPublicKey'),
    );
    const maskSecret = agreeOnce('mask', fromBase64(neighbour.maskPublicKey, X25519_KEY_BYTES, 'maskPublicKey'));
    pairwiseMaskKeys[neighbour.participantId] = toBase64(
      pairwiseMaskKey(maskSecret, hashBytes, participantId, neighbour.participantId),
    );
    return shareEncryptionKeyFromSecret(encryptionSecret, hashBytes, participantId, neighbour.participantId);
  });
  const neighbours = verified.map((neighbour, i): NeighbourKeys => ({
    ...neighbour,
    shareKey: toBase64(shareKeysByNeighbour[i]!),
  }));
  const shares = neighbours.map((neighbour, i): EncryptedShare => {
    const plaintext = new Uint8Array(SHARE_PLAINTEXT_BYTES);
    plaintext.set(seedShares[i]!, 0);
    plaintext.set(keyShares[i]!, SHARE_BYTES);
    const nonce = randomBytesFrom(random, GCM_NONCE_BYTES);
    const ad = shareAssociatedData(hashBytes, config.roundId, participantId, neighbour.participantId);
    const key = shareKeysByNeighbour[i]!;
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
  const next: SharedState = {
    ...state,
    phase: 'shared',
    selfMaskSeed: toBase64(seed),
    neighbours,
    pairwiseMaskKeys,
  };
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
  checkPeerKey: PeerKeyCheck,
): { neighbours: NeighbourKeys[]; exclusions: ParticipantExclusion[] } {
  const graphNeighbours = neighbourGraph(state.config).neighboursOf(state.participantId);
  const exclusions: ParticipantExclusion[] = [];
  const valid = new Map<string, KeyAdvertisement>();
  const rejected = new Set<string>();
  for (const input of advertisements) {
    // Only a graph neighbour's advertisement matters here (one naming anyone else, this participant included, was
    // skipped after its check before): skip the others before paying for a signature check and two key probes. An
    // advertisement without a readable id is malformed and was skipped too (its exclusion names no neighbour).
    const named = (input as { participantId?: unknown } | null)?.participantId;
    if (typeof named !== 'string' || !graphNeighbours.includes(named)) continue;
    const checked = checkAdvertisement(state.config, state.configHash, input, identityKeys, undefined, checkPeerKey);
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
  const encryptionKey = lazyPrivateKey(state.encryptionPrivateKey, 'encryptionPrivateKey');
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
    decryptShare(state, shareKeyWith(state, encryptionKey, hashBytes, neighbour), hashBytes, share);
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
  const maskPrivateKey = lazyPrivateKey(state.maskPrivateKey, 'maskPrivateKey');
  const terms: MaskTerm[] = [{ key: selfMaskKey(seed, hashBytes, participantId), sign: 1 }];
  for (const partner of maskPartners) {
    const neighbour = state.neighbours.find((n) => n.participantId === partner);
    if (neighbour === undefined) continue;
    const kept = state.pairwiseMaskKeys?.[partner];
    const key =
      kept !== undefined
        ? fromBase64(kept, 32, 'pairwiseMaskKey')
        : pairwiseMaskKey(
            x25519SharedSecret(
              maskPrivateKey(),
              fromBase64(neighbour.maskPublicKey, X25519_KEY_BYTES, 'maskPublicKey'),
            ),
            hashBytes,
            participantId,
            partner,
          );
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
