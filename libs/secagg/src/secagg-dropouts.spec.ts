import { describe, expect, it } from 'vitest';

import { collectAdvertisements } from './hub-collection';
import { neighbourGraph } from './neighbour-graph';
import { SecAggErrorCode } from './secagg.exception';
import { unmaskingProgress, unmaskSum } from './unmasking';
import {
  DropStage,
  expectedSum,
  identityKeys,
  publicDirectory,
  refusalCode,
  runRoundUntilUnmasking,
  siloIds,
  testConfig,
  testUpdates,
  unmaskRun,
} from './secagg-round.test-util';

const ids = siloIds(7);
const keys = identityKeys(ids);
const config = testConfig({ participants: ids, threshold: 4, vectorLength: 500 });
const updates = testUpdates(ids, config.vectorLength);
const [a, b, c, d] = ids;

async function exactUnmask(drop: Map<string, DropStage>, expectedInSum: string[]) {
  const run = await runRoundUntilUnmasking({ config, keys, updates, drop });
  const sum = await unmaskRun(run);
  expect(run.plan.request.survivors).toEqual(expectedInSum);
  expect(Array.from(sum)).toEqual(Array.from(expectedSum(run, expectedInSum)));
  return run;
}

describe('dropouts at every stage', () => {
  it('a participant that never advertises keys is simply not part of the round', async () => {
    const run = await exactUnmask(new Map([[a!, 'before-advertising']]), ids.slice(1));
    expect(run.advertised.map((x) => x.participantId)).not.toContain(a);
  });

  it('a participant that leaves after advertising: nobody masks with it, nothing of it is reconstructed', async () => {
    const run = await exactUnmask(new Map([[a!, 'after-advertising']]), ids.slice(1));
    expect(run.routing.sharers.map((s) => s.participantId)).not.toContain(a);
    expect(run.plan.request.dropped).toEqual([]);
    for (const sharer of run.routing.sharers) expect(sharer.maskPartners).not.toContain(a);
  });

  it('a participant that leaves after sharing: its mask key is rebuilt and its pairwise masks removed', async () => {
    const run = await exactUnmask(new Map([[a!, 'after-sharing']]), ids.slice(1));
    expect(run.plan.request.dropped).toEqual([a]);
    expect(run.plan.reconstructions.filter((r) => r.owner === a).map((r) => r.kind)).toEqual(['maskKey']);
    // Its input is in no sum: the seed of a dropped participant is never asked for.
    expect(run.responses.every((r) => r.selfMaskSeedShares.every((s) => s.owner !== a))).toBe(true);
  });

  it('a participant that leaves after uploading: its input counts, the others rebuild its self-mask seed', async () => {
    const run = await exactUnmask(new Map([[a!, 'after-uploading']]), ids);
    expect(run.responses.map((r) => r.participantId)).not.toContain(a);
    expect(run.plan.reconstructions.filter((r) => r.owner === a).map((r) => r.kind)).toEqual(['selfMaskSeed']);
  });

  it('dropouts at every stage in one round (4 of 8 leave) still unmask exactly', async () => {
    // n = 8, t = 3: an answering survivor's seed is rebuilt from its 3 other answering neighbours.
    const eight = siloIds(8);
    const wide = testConfig({ participants: eight, threshold: 3, vectorLength: 500 });
    const [w, x, y, z] = eight;
    const drop = new Map<string, DropStage>([
      [w!, 'before-advertising'],
      [x!, 'after-advertising'],
      [y!, 'after-sharing'],
      [z!, 'after-uploading'],
    ]);
    const run = await runRoundUntilUnmasking({
      config: wide,
      keys: identityKeys(eight),
      updates: testUpdates(eight, wide.vectorLength),
      drop,
    });
    const survivors = eight.slice(3);
    expect(run.plan.request.survivors).toEqual(survivors);
    expect(run.plan.request.dropped).toEqual([y]);
    expect(Array.from(await unmaskRun(run))).toEqual(Array.from(expectedSum(run, survivors)));
  });

  it('during unmasking: too few answers is a clean INSUFFICIENT_SHARES; the round finishes once enough arrive', async () => {
    const run = await runRoundUntilUnmasking({ config, keys, updates });
    const context = { routing: run.routing, advertised: run.advertised, plan: run.plan };
    // Three of seven leave mid-unmasking: an answering owner then has 3 share holders left, fewer than t = 4.
    const early = run.responses.slice(0, 4);
    const progress = unmaskingProgress(run.plan, early);
    expect(progress.ready).toBe(false);
    expect(progress.missing.length).toBeGreaterThan(0);
    expect(progress.missing.every((m) => m.have < m.need && m.need === 4)).toBe(true);
    await expect(unmaskSum(config, context, early, run.accumulator.sum)).rejects.toMatchObject({
      code: SecAggErrorCode.InsufficientShares,
    });
    // One more answer before the deadline: every secret has t holders again and the sum is exact.
    const enough = run.responses.slice(0, 5);
    expect(unmaskingProgress(run.plan, enough).ready).toBe(true);
    const sum = await unmaskSum(config, context, enough, run.accumulator.sum);
    expect(Array.from(sum)).toEqual(Array.from(expectedSum(run, ids)));
  });
});

describe('fewer than t survivors fail cleanly', () => {
  it('at upload: TOO_FEW_SURVIVORS from planUnmasking, before any share is asked for', async () => {
    const drop = new Map<string, DropStage>([
      [a!, 'after-sharing'],
      [b!, 'after-sharing'],
      [c!, 'after-sharing'],
      [d!, 'after-sharing'],
    ]);
    await expect(runRoundUntilUnmasking({ config, keys, updates, drop })).rejects.toMatchObject({
      code: SecAggErrorCode.TooFewSurvivors,
    });
  });

  it('at advertising: TOO_FEW_SURVIVORS when fewer than t + 1 advertise', () => {
    expect(refusalCode(() => collectAdvertisements(config, [], publicDirectory(keys)))).toBe(
      SecAggErrorCode.TooFewSurvivors,
    );
  });

  it('at sharing: TOO_FEW_SURVIVORS when fewer than t share', async () => {
    const drop = new Map<string, DropStage>([a!, b!, c!, d!].map((id) => [id, 'after-advertising']));
    await expect(runRoundUntilUnmasking({ config, keys, updates, drop })).rejects.toMatchObject({
      code: SecAggErrorCode.TooFewSurvivors,
    });
  });
});

describe('SecAgg+ sparse neighbourhoods', () => {
  const many = siloIds(12);
  const manyKeys = identityKeys(many);
  const sparse = testConfig({ participants: many, neighbourCount: 6, threshold: 3, vectorLength: 300 });
  const manyUpdates = testUpdates(many, sparse.vectorLength);

  it('unmasks exactly with k = 6 of 11, t = 3 and three dropouts after sharing and after uploading', async () => {
    const drop = new Map<string, DropStage>([
      [many[0]!, 'after-sharing'],
      [many[5]!, 'after-sharing'],
      [many[7]!, 'after-uploading'],
    ]);
    const run = await runRoundUntilUnmasking({ config: sparse, keys: manyKeys, updates: manyUpdates, drop });
    const survivors = many.filter((id) => id !== many[0] && id !== many[5]);
    expect(Array.from(await unmaskRun(run))).toEqual(Array.from(expectedSum(run, survivors)));
    const graph = neighbourGraph(sparse);
    for (const sharer of run.routing.sharers) {
      expect(sharer.maskPartners.every((p) => graph.areNeighbours(sharer.participantId, p))).toBe(true);
    }
  });

  it('refuses to unmask when the survivors’ mask graph falls apart (SURVIVOR_GRAPH_DISCONNECTED)', async () => {
    const ring = testConfig({ participants: siloIds(8), neighbourCount: 2, threshold: 2, vectorLength: 50 });
    const graph = neighbourGraph(ring);
    const first = ring.participants[0]!;
    const [left] = graph.neighboursOf(first);
    const opposite = graph.neighboursOf(left!).find((x) => x !== first) ?? '';
    // Dropping first and the participant two steps away on the ring leaves one survivor cut off from the others.
    const drop = new Map<string, DropStage>([
      [first, 'after-sharing'],
      [opposite, 'after-sharing'],
    ]);
    await expect(
      runRoundUntilUnmasking({
        config: ring,
        keys: identityKeys(ring.participants),
        updates: testUpdates(ring.participants, 50),
        drop,
      }),
    ).rejects.toMatchObject({ code: SecAggErrorCode.SurvivorGraphDisconnected });
  });
});
