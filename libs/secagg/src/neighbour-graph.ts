// The communication graph of SecAgg+ (Bell et al. 2020): each participant exchanges keys and shares only with its k
// neighbours instead of all n − 1 others, which brings per-participant cost from O(n) to O(k). The graph is a
// function of public values only (the round seed, the roster, k), so every participant computes the same graph
// itself and the hub cannot hand a participant neighbours of its choosing.

import { createCipheriv, createHash } from 'node:crypto';

import { encodeTuple, fromHex } from './encoding.util';
import { SECAGG_PROTOCOL, SecAggConfig } from './parameters';
import { SecAggErrorCode, SecAggException } from './secagg.exception';

/** Neighbour lists of every roster member, each sorted in roster order. */
export interface NeighbourGraph {
  readonly participants: readonly string[];
  readonly neighbourCount: number;
  neighboursOf(participantId: string): readonly string[];
  areNeighbours(a: string, b: string): boolean;
}

/**
 * A k-regular graph on the roster: the participants are placed on a ring in a random order drawn from the round
 * seed (Fisher–Yates with AES-256-CTR as the stream of randomness), and each is joined to the k/2 nearest on either
 * side, plus the one opposite when k is odd — the Harary graph H(k, n) on a random relabelling. Every participant has
 * exactly k neighbours, so one threshold t fits all. With k = n − 1 it is the complete graph (Bonawitz et al. 2017).
 */
export function neighbourGraph(
  config: Pick<SecAggConfig, 'participants' | 'neighbourCount' | 'roundSeed'>,
): NeighbourGraph {
  const n = config.participants.length;
  const k = config.neighbourCount;
  if (k < 1 || k > n - 1 || (k % 2 === 1 && n % 2 === 1)) {
    throw new SecAggException(SecAggErrorCode.InvalidParameters, `No ${k}-regular graph on ${n} participants.`);
  }
  const ring = seededPermutation(config.participants, config.roundSeed, k);
  const position = new Map(ring.map((id, p) => [id, p]));
  const lists = new Map<string, readonly string[]>();
  const order = new Map(config.participants.map((id, i) => [id, i]));
  for (const [p, id] of ring.entries()) {
    const near = new Set<string>();
    for (let d = 1; d <= k >> 1; d++) {
      near.add(ring[(p + d) % n]!);
      near.add(ring[(p - d + n) % n]!);
    }
    if (k % 2 === 1) near.add(ring[(p + n / 2) % n]!);
    lists.set(
      id,
      [...near].sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0)),
    );
  }
  const neighboursOf = (participantId: string): readonly string[] => {
    const list = lists.get(participantId);
    if (list === undefined) {
      throw new SecAggException(
        SecAggErrorCode.MalformedMessage,
        `${JSON.stringify(participantId)} is not in the round's roster.`,
      );
    }
    return list;
  };
  return {
    participants: config.participants,
    neighbourCount: k,
    neighboursOf,
    areNeighbours: (a, b) => position.has(a) && position.has(b) && neighboursOf(a).includes(b),
  };
}

/** The roster in the order of a Fisher–Yates shuffle driven by AES-256-CTR under SHA-256(label, seed, k). */
function seededPermutation(participants: readonly string[], roundSeed: string, k: number): string[] {
  const key = createHash('sha256')
    .update(encodeTuple(`${SECAGG_PROTOCOL} neighbour-graph`, [fromHex(roundSeed, 32, 'roundSeed'), k]))
    .digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const word = Buffer.alloc(4);
  const nextWord = (): number => cipher.update(word.fill(0)).readUInt32BE(0);
  const ring = [...participants];
  for (let i = ring.length - 1; i > 0; i--) {
    const j = uniformBelow(i + 1, nextWord);
    [ring[i], ring[j]] = [ring[j]!, ring[i]!];
  }
  return ring;
}

/** An integer uniform on [0, bound) from uniform 32-bit words, by rejection (no modulo bias). */
function uniformBelow(bound: number, nextWord: () => number): number {
  const limit = 2 ** 32 - (2 ** 32 % bound);
  for (;;) {
    const w = nextWord();
    if (w < limit) return w % bound;
  }
}

/**
 * True when the undirected graph with these vertices and edges is connected. Used on the survivors' mask graph: if
 * it fell apart, unmasking would hand the hub the sum of each component, not just the total.
 */
export function isConnected(vertices: readonly string[], edges: ReadonlyMap<string, readonly string[]>): boolean {
  if (vertices.length === 0) return true;
  const inside = new Set(vertices);
  const seen = new Set<string>([vertices[0]!]);
  const stack = [vertices[0]];
  for (let v = stack.pop(); v !== undefined; v = stack.pop()) {
    for (const w of edges.get(v) ?? []) {
      if (inside.has(w) && !seen.has(w)) {
        seen.add(w);
        stack.push(w);
      }
    }
  }
  return seen.size === inside.size;
}
