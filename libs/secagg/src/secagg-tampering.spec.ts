import { describe, expect, it } from 'vitest';

import { checkMaskedInput, checkShareMessage } from './hub-collection';
import { MaskedSumAccumulator } from './masked-sum';
import { decodeMaskedVector, encodeMaskedVector } from './masked-vector-codec';
import { maskInput, shareKeys } from './participant';
import { SharedState } from './participant-state';
import { ExclusionReason, SecAggErrorCode } from './secagg.exception';
import {
  identityKeys,
  publicDirectory,
  refusalCode,
  runRoundUntilUnmasking,
  siloIds,
  testConfig,
  testUpdates,
} from './secagg-round.test-util';

const ids = siloIds(6);
const keys = identityKeys(ids);
const config = testConfig({ participants: ids, threshold: 3, vectorLength: 100 });
const updates = testUpdates(ids, config.vectorLength);
const [a, b] = ids;

async function round() {
  const run = await runRoundUntilUnmasking({ config, keys, updates });
  const state = run.sharedStates.get(b!);
  const delivery = run.routing.deliveries.find((d) => d.recipient === b);
  const input = run.quantised.get(b!);
  if (state === undefined || delivery === undefined || input === undefined) throw new Error('missing');
  return { run, state, shares: delivery.shares, input };
}

describe('what the hub relays is authenticated by the participants', () => {
  it('a share altered in transit fails authentication (SHARE_DECRYPTION_FAILED)', async () => {
    const { state, shares, input } = await round();
    const altered = shares.map((s, i) => {
      if (i !== 0) return s;
      const bytes = Buffer.from(s.ciphertext, 'base64');
      bytes[5]! ^= 1;
      return { ...s, ciphertext: bytes.toString('base64') };
    });
    expect(refusalCode(() => maskInput(state, { shares: altered, input }))).toBe(SecAggErrorCode.ShareDecryptionFailed);
    // Re-labelled as coming from another neighbour, a genuine share does not open either.
    const relabelled = shares.map((s, i) =>
      i === 0 ? { ...s, from: shares[1]!.from } : i === 1 ? { ...s, from: shares[0]!.from } : s,
    );
    expect(refusalCode(() => maskInput(state, { shares: relabelled, input }))).toBe(
      SecAggErrorCode.ShareDecryptionFailed,
    );
  });

  it('a share for someone else, or two from one sender, is refused (MALFORMED_MESSAGE)', async () => {
    const { run, state, shares, input } = await round();
    const foreign = run.routing.deliveries.find((d) => d.recipient === a)?.shares[0];
    expect(refusalCode(() => maskInput(state, { shares: [...shares, foreign], input }))).toBe(
      SecAggErrorCode.MalformedMessage,
    );
    expect(refusalCode(() => maskInput(state, { shares: [...shares, shares[0]], input }))).toBe(
      SecAggErrorCode.MalformedMessage,
    );
  });

  it('a hub that withholds shares or keys cannot make a participant mask with fewer than t partners', async () => {
    const { run, state, shares, input } = await round();
    expect(refusalCode(() => maskInput(state, { shares: shares.slice(0, config.threshold - 1), input }))).toBe(
      SecAggErrorCode.TooFewNeighbours,
    );
    const advertisedState = run.advertisedStates.get(b!);
    if (advertisedState === undefined) throw new Error('missing');
    const few = run.advertised.filter((x) => x.participantId === b).concat(run.advertised.slice(0, 2));
    await expect(
      shareKeys(advertisedState, { advertisements: few, identityKeys: publicDirectory(keys) }),
    ).rejects.toMatchObject({ code: SecAggErrorCode.TooFewNeighbours });
  });

  it('a step run on a state of the wrong phase is refused (OUT_OF_ORDER)', async () => {
    const { run, shares, input } = await round();
    const wrongPhase = run.advertisedStates.get(b!) as unknown as SharedState;
    expect(refusalCode(() => maskInput(wrongPhase, { shares, input }))).toBe(SecAggErrorCode.OutOfOrder);
  });

  it('after masking, the participant keeps neither its mask key nor its self-mask seed (nor the masks it agreed)', async () => {
    const { state, shares, input } = await round();
    expect(Object.keys(state)).toContain('pairwiseMaskKeys');
    const out = maskInput(state, { shares, input });
    expect(Object.keys(out.state)).not.toContain('maskPrivateKey');
    expect(Object.keys(out.state)).not.toContain('selfMaskSeed');
    expect(Object.keys(out.state)).not.toContain('pairwiseMaskKeys');
    expect(out.state.maskPartners).toHaveLength(ids.length - 1);
  });
});

describe('the hub sets aside malformed or inconsistent messages with a reason', () => {
  it('share messages addressed to non-neighbours, twice to one, or to fewer than t', async () => {
    const { run } = await round();
    const message = run.shareMessages[0]!;
    const reasonOf = (input: unknown) => {
      const checked = checkShareMessage(config, run.advertised, input);
      return checked.ok ? 'ok' : checked.exclusion.reason;
    };
    expect(reasonOf(message)).toBe('ok');
    expect(reasonOf({ ...message, shares: [...message.shares, message.shares[0]] })).toBe(
      ExclusionReason.SharesMisaddressed,
    );
    expect(reasonOf({ ...message, shares: [{ ...message.shares[0], to: message.participantId }] })).toBe(
      ExclusionReason.SharesMisaddressed,
    );
    expect(reasonOf({ ...message, shares: message.shares.slice(0, config.threshold - 1) })).toBe(
      ExclusionReason.SharesMisaddressed,
    );
    expect(reasonOf({ ...message, configHash: '0'.repeat(64) })).toBe(ExclusionReason.ConfigMismatch);
  });

  it('masked inputs with other mask partners, a wrong length or from a participant that did not share', async () => {
    const { run } = await round();
    const header = run.uploads[0]!;
    const vector = run.masked.get(header.participantId)?.vector ?? new Uint32Array(0);
    const reasonOf = (input: unknown, v = vector) => {
      const checked = checkMaskedInput(config, run.routing, input, v);
      return checked.ok ? 'ok' : checked.exclusion.reason;
    };
    expect(reasonOf(header)).toBe('ok');
    expect(reasonOf({ ...header, maskPartners: header.maskPartners.slice(1) })).toBe(
      ExclusionReason.MaskPartnersMismatch,
    );
    expect(reasonOf(header, vector.subarray(1))).toBe(ExclusionReason.Malformed);
    expect(reasonOf({ ...header, participantId: 'stranger' })).toBe(ExclusionReason.MissedPreviousStage);
  });

  it('values at or above 2^k when k < 32', async () => {
    const small = testConfig({ participants: ids, threshold: 3, vectorLength: 20, modulusBits: 24, scale: 2 ** 10 });
    const run = await runRoundUntilUnmasking({ config: small, keys, updates: testUpdates(ids, 20) });
    const header = run.uploads[0]!;
    const vector = (run.masked.get(header.participantId)?.vector ?? new Uint32Array(20)).slice();
    expect(checkMaskedInput(small, run.routing, header, vector).ok).toBe(true);
    vector[3] = 2 ** 24;
    const checked = checkMaskedInput(small, run.routing, header, vector);
    expect(checked.ok ? 'ok' : checked.exclusion.reason).toBe(ExclusionReason.Malformed);
  });
});

describe('the incremental masked sum', () => {
  it('resumes from a persisted sum and contributor list and refuses a second input from one participant', async () => {
    const { run } = await round();
    const [first, ...rest] = run.uploads.map((u) => u.participantId);
    const vectorOf = (id: string) => run.masked.get(id)?.vector ?? new Uint32Array(0);
    const before = new MaskedSumAccumulator(config);
    before.add(first!, vectorOf(first!));
    // What the hub would write to its database between arrivals: the sum as bytes, the contributor ids as text.
    const stored = {
      sum: encodeMaskedVector(before.sum, config.modulusBits),
      contributors: JSON.stringify(before.contributors),
    };
    const persisted = {
      sum: decodeMaskedVector(stored.sum, config.vectorLength, config.modulusBits),
      contributors: JSON.parse(stored.contributors) as string[],
    };
    const after = new MaskedSumAccumulator(config, persisted);
    for (const id of rest) after.add(id, vectorOf(id));
    expect(Array.from(after.sum)).toEqual(Array.from(run.accumulator.sum));
    expect(refusalCode(() => after.add(first!, vectorOf(first!)))).toBe(SecAggErrorCode.OutOfOrder);
  });
});
