// The hub's side of rounds 0–2, as pure functions over plain values: what it receives is checked and either kept or
// set aside with a typed reason, and what it must store (accepted messages, routing, exclusions) is JSON-serialisable,
// so the hub can keep the whole protocol state in its database and resume after a restart. The hub holds no secret:
// every share it routes is encrypted to its recipient.

import { Checked, checkAdvertisement, messageOf } from './advertisement';
import { IdentityKeyDirectory } from './identity-signature';
import { EncryptedShare, KeyAdvertisement, MaskedInputHeader, parseMessage, ShareKeysMessage } from './messages';
import { neighbourGraph } from './neighbour-graph';
import { compareIds, secAggConfigHash, SecAggConfig } from './parameters';
import { assertModularVector } from './quantisation';
import {
  ExclusionReason,
  ParticipantExclusion,
  SecAggErrorCode,
  SecAggException,
  SecAggStage,
} from './secagg.exception';

/**
 * Round 0 closed: the advertisements to relay (sorted by participant) and the senders set aside. Each participant is
 * sent the whole list and checks its neighbours' entries itself. Throws TOO_FEW_SURVIVORS when fewer than t + 1
 * participants advertised valid keys (a participant's t share holders are others).
 */
export function collectAdvertisements(
  config: SecAggConfig,
  submitted: readonly unknown[],
  identityKeys: IdentityKeyDirectory,
): { advertised: KeyAdvertisement[]; exclusions: ParticipantExclusion[] } {
  const configHash = secAggConfigHash(config);
  const accepted = new Map<string, KeyAdvertisement>();
  const exclusions: ParticipantExclusion[] = [];
  for (const input of submitted) {
    const checked = checkAdvertisement(config, configHash, input, identityKeys);
    if (!checked.ok) exclusions.push(checked.exclusion);
    else keepFirst(accepted, checked.value.participantId, checked.value, exclusions, 'advertise');
  }
  const advertised = [...accepted.values()].sort((a, b) => compareIds(a.participantId, b.participantId));
  assertEnough(
    config,
    advertised.length - 1,
    `Only ${advertised.length} participants advertised valid keys: none can have t = ${config.threshold} share holders.`,
  );
  return { advertised, exclusions };
}

/**
 * Checks one share message as it arrives: sender advertised, configuration, and shares addressed exactly once each
 * to advertised graph neighbours of the sender, at least t of them, each naming the sender.
 */
export function checkShareMessage(
  config: SecAggConfig,
  advertised: readonly KeyAdvertisement[],
  input: unknown,
): Checked<ShareKeysMessage> {
  const exclude = (id: string, reason: ExclusionReason, detail: string): Checked<ShareKeysMessage> => ({
    ok: false,
    exclusion: { participantId: id, stage: 'share', reason, detail },
  });
  let message: ShareKeysMessage;
  try {
    message = parseMessage(ShareKeysMessage, input, 'share message');
  } catch (error) {
    return exclude('(unknown)', ExclusionReason.Malformed, messageOf(error));
  }
  const id = message.participantId;
  if (message.configHash !== secAggConfigHash(config)) {
    return exclude(id, ExclusionReason.ConfigMismatch, 'The share message was made for another configuration.');
  }
  const advertisedIds = new Set(advertised.map((a) => a.participantId));
  if (!advertisedIds.has(id)) {
    return exclude(id, ExclusionReason.MissedPreviousStage, `${id} sent shares without advertised keys.`);
  }
  const neighbours = neighbourGraph(config).neighboursOf(id);
  const recipients = new Set<string>();
  for (const share of message.shares) {
    if (
      share.from !== id ||
      !neighbours.includes(share.to) ||
      !advertisedIds.has(share.to) ||
      recipients.has(share.to)
    ) {
      return exclude(
        id,
        ExclusionReason.SharesMisaddressed,
        `A share from ${share.from} to ${share.to} is not allowed.`,
      );
    }
    recipients.add(share.to);
  }
  if (recipients.size < config.threshold) {
    return exclude(
      id,
      ExclusionReason.SharesMisaddressed,
      `${id} shared with ${recipients.size} neighbours; the threshold is ${config.threshold}.`,
    );
  }
  return { ok: true, value: message };
}

/** One participant that completed ShareKeys, as the hub records it. */
export interface SharerRecord {
  participantId: string;
  selfMaskCommitment: string;
  /** Who received (and so holds) a share of this participant's secrets: its mask partners. */
  holders: string[];
  /** The participants whose pairwise masks this participant's input must carry. */
  maskPartners: string[];
}

/** Round 1 closed: who shared, and which encrypted shares each of them is to receive. */
export interface ShareRouting {
  configHash: string;
  sharers: SharerRecord[];
  deliveries: { recipient: string; shares: EncryptedShare[] }[];
}

/**
 * Round 1 closed: routes the shares of the accepted messages. A share from u to v is delivered only when v shared
 * too and v also sent a share to u — then, and only then, u and v are mask partners: both hold a share of the other's
 * secrets, so whichever of them drops, the other's pairwise mask with it can be removed. Throws TOO_FEW_SURVIVORS with
 * fewer than t sharers. `messages` must have passed checkShareMessage; a second message from a sender is refused.
 */
export function routeShares(config: SecAggConfig, messages: readonly ShareKeysMessage[]): ShareRouting {
  const configHash = secAggConfigHash(config);
  const bySender = new Map<string, ShareKeysMessage>();
  for (const message of messages) {
    if (message.configHash !== configHash) {
      throw new SecAggException(SecAggErrorCode.ConfigMismatch, 'A share message belongs to another configuration.');
    }
    if (bySender.has(message.participantId)) {
      throw new SecAggException(SecAggErrorCode.OutOfOrder, `Two share messages from ${message.participantId}.`);
    }
    bySender.set(message.participantId, message);
  }
  const sentTo = (from: string, to: string): boolean => bySender.get(from)?.shares.some((s) => s.to === to) ?? false;
  const sharerIds = [...bySender.keys()].sort(compareIds);
  const deliveries = new Map<string, EncryptedShare[]>(sharerIds.map((id) => [id, []]));
  for (const id of sharerIds) {
    for (const share of bySender.get(id)?.shares ?? []) {
      if (bySender.has(share.to) && sentTo(share.to, id)) deliveries.get(share.to)?.push(share);
    }
  }
  const sharers = sharerIds.map((id): SharerRecord => {
    const partners = (deliveries.get(id) ?? []).map((s) => s.from).sort(compareIds);
    return {
      participantId: id,
      selfMaskCommitment: bySender.get(id)?.selfMaskCommitment ?? '',
      // Mask partnership is symmetric, so the holders of id's shares are exactly its partners.
      holders: partners,
      maskPartners: partners,
    };
  });
  assertEnough(
    config,
    sharers.length,
    `Only ${sharers.length} participants completed sharing; t = ${config.threshold}.`,
  );
  return {
    configHash,
    sharers,
    deliveries: sharerIds.map((recipient) => ({ recipient, shares: deliveries.get(recipient) ?? [] })),
  };
}

/**
 * Checks one masked input as it arrives: the sender shared, declares exactly the mask partners routed for it, and
 * its vector has m values below 2^k. An input whose partners differ would not unmask correctly and is set aside.
 */
export function checkMaskedInput(
  config: SecAggConfig,
  routing: ShareRouting,
  input: unknown,
  vector: Uint32Array,
): Checked<MaskedInputHeader> {
  const exclude = (id: string, reason: ExclusionReason, detail: string): Checked<MaskedInputHeader> => ({
    ok: false,
    exclusion: { participantId: id, stage: 'upload', reason, detail },
  });
  let header: MaskedInputHeader;
  try {
    header = parseMessage(MaskedInputHeader, input, 'masked input header');
  } catch (error) {
    return exclude('(unknown)', ExclusionReason.Malformed, messageOf(error));
  }
  const id = header.participantId;
  if (header.configHash !== routing.configHash || routing.configHash !== secAggConfigHash(config)) {
    return exclude(id, ExclusionReason.ConfigMismatch, 'The masked input was made for another configuration.');
  }
  const sharer = routing.sharers.find((s) => s.participantId === id);
  if (sharer === undefined) {
    return exclude(id, ExclusionReason.MissedPreviousStage, `${id} uploaded without completing sharing.`);
  }
  if (header.maskPartners.join('\n') !== sharer.maskPartners.join('\n')) {
    return exclude(
      id,
      ExclusionReason.MaskPartnersMismatch,
      `${id} masked with [${header.maskPartners.join(', ')}], routed [${sharer.maskPartners.join(', ')}].`,
    );
  }
  try {
    assertModularVector(vector, config.vectorLength, config.modulusBits, `${id}'s masked input`);
  } catch (error) {
    return exclude(id, ExclusionReason.Malformed, messageOf(error));
  }
  return { ok: true, value: header };
}

/** Keeps the first message of a participant at a stage; a second one is recorded as DUPLICATE. */
function keepFirst<T>(
  kept: Map<string, T>,
  id: string,
  value: T,
  exclusions: ParticipantExclusion[],
  stage: SecAggStage,
): void {
  if (kept.has(id)) {
    exclusions.push({
      participantId: id,
      stage,
      reason: ExclusionReason.Duplicate,
      detail: `A second message from ${id}.`,
    });
  } else {
    kept.set(id, value);
  }
}

/** Throws TOO_FEW_SURVIVORS with `message` when `available` is below the threshold t. */
export function assertEnough(config: SecAggConfig, available: number, message: string): void {
  if (available < config.threshold) throw new SecAggException(SecAggErrorCode.TooFewSurvivors, message);
}
