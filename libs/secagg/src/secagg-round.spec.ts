import { describe, expect, it } from 'vitest';

import { maskInput } from './participant';
import { revealShares } from './participant-reveal';
import { SharedState } from './participant-state';
import { dequantiseSum, sumQuantisationErrorBound } from './quantisation';
import {
  expectedSum,
  identityKeys,
  runRoundUntilUnmasking,
  siloIds,
  testConfig,
  testUpdates,
  unmaskRun,
} from './secagg-round.test-util';

describe('a secure-aggregation round without dropouts', () => {
  const ids = siloIds(5);
  const keys = identityKeys(ids);
  const config = testConfig({ participants: ids, vectorLength: 2000 });
  const updates = testUpdates(ids, config.vectorLength);

  it('unmasks exactly the sum of the quantised inputs, modulo 2^k', async () => {
    const run = await runRoundUntilUnmasking({ config, keys, updates });
    const sum = await unmaskRun(run);
    expect(run.plan.request.survivors).toEqual(ids);
    expect(run.plan.request.dropped).toEqual([]);
    expect(Array.from(sum)).toEqual(Array.from(expectedSum(run, ids)));
  });

  it('dequantises to the plaintext float sum within n/s per coordinate', async () => {
    const run = await runRoundUntilUnmasking({ config, keys, updates });
    const sum = dequantiseSum(await unmaskRun(run), config);
    const bound = sumQuantisationErrorBound(ids.length, config.scale);
    let worst = 0;
    for (let i = 0; i < config.vectorLength; i++) {
      let plain = 0;
      for (const id of ids) plain += updates.get(id)?.[i] ?? NaN;
      worst = Math.max(worst, Math.abs(sum[i]! - plain));
    }
    expect(worst).toBeLessThan(bound);
    // Not trivially small: stochastic rounding does move values (the bound is not met by an all-zero answer).
    expect(worst).toBeGreaterThan(0);
  });

  it('hides each input: a masked vector differs from its quantised input almost everywhere', async () => {
    const run = await runRoundUntilUnmasking({ config, keys, updates });
    for (const id of ids) {
      const masked = run.masked.get(id)?.vector;
      const plain = run.quantised.get(id);
      if (masked === undefined || plain === undefined) throw new Error('missing');
      let equal = 0;
      for (let i = 0; i < masked.length; i++) if (masked[i] === plain[i]) equal++;
      expect(equal).toBeLessThan(3); // expected 2000 / 2^32 ≈ 0
    }
  });
});

describe('secrets agreed once per round and kept between the steps', () => {
  const ids = siloIds(4);
  const keys = identityKeys(ids);
  const config = testConfig({ participants: ids, vectorLength: 300 });
  const updates = testUpdates(ids, config.vectorLength);

  /** A shared state as written before the agreed keys were kept: masking and unmasking agree them again. */
  const withoutKeptKeys = (state: SharedState): SharedState => {
    const { pairwiseMaskKeys, ...rest } = state;
    expect(Object.keys(pairwiseMaskKeys ?? {})).toHaveLength(ids.length - 1);
    return { ...rest, neighbours: rest.neighbours.map(({ shareKey: _kept, ...keys }) => keys) };
  };

  it('masks and answers exactly as when every secret is agreed again (a state written before they were kept)', async () => {
    const run = await runRoundUntilUnmasking({ config, keys, updates });
    for (const { recipient, shares } of run.routing.deliveries) {
      const shared = run.sharedStates.get(recipient);
      const input = run.quantised.get(recipient);
      const uploaded = run.masked.get(recipient);
      if (shared === undefined || input === undefined || uploaded === undefined) throw new Error('missing');
      const kept = maskInput(shared, { shares, input });
      const agreedAgain = maskInput(withoutKeptKeys(shared), { shares, input });
      expect(Array.from(kept.vector)).toEqual(Array.from(uploaded.vector));
      expect(Array.from(agreedAgain.vector)).toEqual(Array.from(kept.vector));
      expect(revealShares(agreedAgain.state, run.plan.request).response).toEqual(
        revealShares(kept.state, run.plan.request).response,
      );
    }
  });
});
