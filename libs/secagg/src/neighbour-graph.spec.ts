import { describe, expect, it } from 'vitest';

import { isConnected, neighbourGraph } from './neighbour-graph';
import { SecAggErrorCode } from './secagg.exception';
import { refusalCode, siloIds } from './secagg-round.test-util';

const seedA = 'a'.repeat(64);
const seedB = 'b'.repeat(64);

describe('the SecAgg+ neighbour graph', () => {
  it('is k-regular and symmetric for every admissible (n, k)', () => {
    for (const n of [3, 4, 7, 10, 16, 21]) {
      const participants = siloIds(n);
      for (let k = 2; k <= n - 1; k++) {
        if (k % 2 === 1 && n % 2 === 1) continue;
        const graph = neighbourGraph({ participants, neighbourCount: k, roundSeed: seedA });
        for (const id of participants) {
          const near = graph.neighboursOf(id);
          expect(near).toHaveLength(k);
          expect(near).not.toContain(id);
          for (const other of near) expect(graph.neighboursOf(other)).toContain(id);
        }
      }
    }
  });

  it('is the complete graph when k = n − 1 (Bonawitz et al. 2017)', () => {
    for (const n of [5, 6]) {
      const participants = siloIds(n);
      const graph = neighbourGraph({ participants, neighbourCount: n - 1, roundSeed: seedA });
      for (const id of participants) expect(graph.neighboursOf(id)).toEqual(participants.filter((p) => p !== id));
    }
  });

  it('is a function of the public seed: the same seed gives the same graph, another seed another graph', () => {
    const participants = siloIds(40);
    const edges = (seed: string) => {
      const graph = neighbourGraph({ participants, neighbourCount: 6, roundSeed: seed });
      return participants.map((id) => graph.neighboursOf(id));
    };
    expect(edges(seedA)).toEqual(edges(seedA));
    expect(edges(seedA)).not.toEqual(edges(seedB));
  });

  it('is connected (a Harary graph on a ring)', () => {
    const participants = siloIds(30);
    const graph = neighbourGraph({ participants, neighbourCount: 4, roundSeed: seedA });
    expect(isConnected(participants, new Map(participants.map((id) => [id, graph.neighboursOf(id)])))).toBe(true);
  });

  it('refuses k with no k-regular graph and ids outside the roster', () => {
    expect(refusalCode(() => neighbourGraph({ participants: siloIds(5), neighbourCount: 3, roundSeed: seedA }))).toBe(
      SecAggErrorCode.InvalidParameters,
    );
    expect(refusalCode(() => neighbourGraph({ participants: siloIds(5), neighbourCount: 5, roundSeed: seedA }))).toBe(
      SecAggErrorCode.InvalidParameters,
    );
    const graph = neighbourGraph({ participants: siloIds(5), neighbourCount: 2, roundSeed: seedA });
    expect(refusalCode(() => graph.neighboursOf('someone-else'))).toBe(SecAggErrorCode.MalformedMessage);
  });
});

describe('isConnected', () => {
  it('tells one component from two', () => {
    const edges = new Map([
      ['a', ['b']],
      ['b', ['a']],
      ['c', ['d']],
      ['d', ['c']],
    ]);
    expect(isConnected(['a', 'b'], edges)).toBe(true);
    expect(isConnected(['a', 'b', 'c', 'd'], edges)).toBe(false);
  });
});
