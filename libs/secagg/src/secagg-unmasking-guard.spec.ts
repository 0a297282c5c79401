// The property that matters most: the hub never obtains both the self-mask seed and the mask key of one participant
// (with both it could strip every mask from that participant's input). The hub's API can only ask for one partition
// (planUnmasking), it refuses answers outside it (checkUnmaskingResponse), and every participant refuses a request
// that puts anyone on both sides, or on the other side than an earlier request did (revealShares).

import { describe, expect, it } from 'vitest';

import { revealShares } from './participant-reveal';
import { SecAggErrorCode, ExclusionReason } from './secagg.exception';
import { checkUnmaskingResponse, unmaskSum } from './unmasking';
import {
  DropStage,
  identityKeys,
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
const [a, b, c] = ids;

async function roundWithDropped() {
  return runRoundUntilUnmasking({ config, keys, updates, drop: new Map<string, DropStage>([[a!, 'after-sharing']]) });
}

function maskedStateOf(run: Awaited<ReturnType<typeof roundWithDropped>>, id: string) {
  const entry = run.masked.get(id);
  if (entry === undefined) throw new Error(`no state for ${id}`);
  return entry.state;
}

describe('the hub cannot obtain both secrets of one participant', () => {
  it('plans one partition: each participant is a survivor or dropped, asked for one kind of share only', async () => {
    const run = await roundWithDropped();
    const { survivors, dropped } = run.plan.request;
    expect(survivors.filter((id) => dropped.includes(id))).toEqual([]);
    const owners = run.plan.reconstructions.map((r) => r.owner);
    expect(new Set(owners).size).toBe(owners.length);
    expect(run.plan.reconstructions.find((r) => r.owner === a)?.kind).toBe('maskKey');
    // And the answers hold exactly that: no seed share of a, no mask-key share of a survivor.
    for (const response of run.responses) {
      expect(response.selfMaskSeedShares.map((s) => s.owner)).not.toContain(a);
      expect(response.maskKeyShares.every((s) => s.owner === a)).toBe(true);
    }
  });

  it('a participant refuses a request listing someone both as survivor and as dropped', async () => {
    const run = await roundWithDropped();
    const request = { ...run.plan.request, dropped: [a, c] };
    expect(refusalCode(() => revealShares(maskedStateOf(run, b!), request))).toBe(
      SecAggErrorCode.ConflictingRevealRequest,
    );
  });

  it('a participant refuses a later request that moves a participant to the other side', async () => {
    const run = await roundWithDropped();
    const state = maskedStateOf(run, b!); // has answered run.plan.request (a dropped, c a survivor)
    const flipDropped = { ...run.plan.request, survivors: [...run.plan.request.survivors, a].sort(), dropped: [] };
    expect(refusalCode(() => revealShares(state, flipDropped))).toBe(SecAggErrorCode.ConflictingRevealRequest);
    const flipSurvivor = {
      ...run.plan.request,
      survivors: run.plan.request.survivors.filter((id) => id !== c),
      dropped: [a, c],
    };
    expect(refusalCode(() => revealShares(state, flipSurvivor))).toBe(SecAggErrorCode.ConflictingRevealRequest);
  });

  it('a participant answers the same request again alike (a restarted hub may re-ask)', async () => {
    const run = await roundWithDropped();
    const state = maskedStateOf(run, b!);
    const first = run.responses.find((r) => r.participantId === b);
    expect(revealShares(state, run.plan.request).response).toEqual(first);
  });

  it('a participant refuses to help when not listed as a survivor, or with fewer than t survivors', async () => {
    const run = await roundWithDropped();
    const state = maskedStateOf(run, b!);
    const withoutMe = { ...run.plan.request, survivors: run.plan.request.survivors.filter((id) => id !== b) };
    expect(refusalCode(() => revealShares(state, withoutMe))).toBe(SecAggErrorCode.ConflictingRevealRequest);
    expect(refusalCode(() => revealShares(state, { ...run.plan.request, survivors: [b, c] }))).toBe(
      SecAggErrorCode.TooFewSurvivors,
    );
  });

  it('the hub refuses (UNREQUESTED_SHARE) an answer revealing a share outside its plan', async () => {
    const run = await roundWithDropped();
    const honest = run.responses.find((r) => r.participantId === b);
    if (honest === undefined) throw new Error('missing response');
    const seed = honest.selfMaskSeedShares.find((s) => s.owner === c);
    const key = honest.maskKeyShares.find((s) => s.owner === a);
    if (seed === undefined || key === undefined) throw new Error('missing shares');
    const survivorKey = { ...honest, maskKeyShares: [...honest.maskKeyShares, { owner: c, share: seed.share }] };
    const droppedSeed = {
      ...honest,
      selfMaskSeedShares: [...honest.selfMaskSeedShares, { owner: a, share: key.share }],
    };
    for (const forged of [survivorKey, droppedSeed]) {
      const checked = checkUnmaskingResponse(run.plan, forged);
      expect(checked.ok ? 'ok' : checked.exclusion.reason).toBe(ExclusionReason.UnrequestedShare);
    }
    expect(checkUnmaskingResponse(run.plan, honest).ok).toBe(true);
  });

  it('a corrupted share is caught by the commitment or the advertised key (RECONSTRUCTION_MISMATCH)', async () => {
    const run = await roundWithDropped();
    const context = { routing: run.routing, advertised: run.advertised, plan: run.plan };
    const corrupt = (kind: 'selfMaskSeedShares' | 'maskKeyShares') =>
      run.responses.map((r, i) => {
        if (i !== 0 || r[kind].length === 0) return r;
        const bytes = Buffer.from(r[kind][0]!.share, 'base64');
        // A middle byte: X25519 clamps the low 3 bits of a private key's first byte (and the top bits of its last),
        // so a change confined to those bits would rebuild a different but equivalent key, rightly accepted.
        bytes[10]! ^= 0xff;
        return { ...r, [kind]: [{ ...r[kind][0], share: bytes.toString('base64') }, ...r[kind].slice(1)] };
      });
    for (const kind of ['selfMaskSeedShares', 'maskKeyShares'] as const) {
      await expect(unmaskSum(config, context, corrupt(kind), run.accumulator.sum)).rejects.toMatchObject({
        code: SecAggErrorCode.ReconstructionMismatch,
      });
    }
  });
});
