import { createHash } from 'node:crypto';
import {
  aggregateRobust,
  aggregateRobustBlockwise,
  screenUpdates,
  screenUpdatesBlockwise,
  type AggregationChoice,
} from '@tessera/aggregation';
import { afterEach, describe, expect, it } from 'vitest';
import { BlobRangeError } from '../blobs/blob-store.exception';
import { BlobUpdateReader } from './blob-update-reader';
import { honestUpdates, storeUpdates, updateFrame } from './stored-updates.test-util';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function stored(updates: Float32Array[]) {
  const s = await storeUpdates(updates);
  cleanups.push(s.dispose);
  return s;
}

describe('BlobUpdateReader: blocks of stored update frames', () => {
  it('reads each block of each update as the values that were uploaded, at any offset', async () => {
    const updates = honestUpdates(3, 1001, 1);
    const { blobs, stored: rows } = await stored(updates);
    const reader = await BlobUpdateReader.open(
      blobs,
      rows.map((r) => r.hash),
      1001,
    );
    expect([reader.count, reader.length]).toEqual([3, 1001]);
    for (const [start, end] of [
      [0, 1],
      [1, 1001],
      [517, 600],
    ] as const) {
      for (let k = 0; k < 3; k += 1) {
        expect(Array.from(await reader.readBlock(k, start, end))).toEqual(Array.from(updates[k]!.subarray(start, end)));
      }
    }
  });

  it.each<[string, AggregationChoice]>([
    ['the coordinate median', { aggregator: { kind: 'coordinate-median' } }],
    ['a trimmed mean', { aggregator: { kind: 'trimmed-mean', trimFraction: 0.25 } }],
    ['Multi-Krum', { aggregator: { kind: 'krum', byzantine: 1, selected: 3 } }],
    ['the geometric median', { aggregator: { kind: 'geometric-median' } }],
    [
      'a median after median-multiple bounding',
      { aggregator: { kind: 'coordinate-median' }, normBound: { mode: 'median-multiple', multiplier: 1.5 } },
    ],
  ])('gives %s over the blob store bit for bit as in memory', async (_name, choice) => {
    const updates = honestUpdates(8, 70_000, 2);
    updates[7] = updates[7]!.map((x) => 10 * x);
    const { blobs, stored: rows } = await stored(updates);
    const reader = await BlobUpdateReader.open(
      blobs,
      rows.map((r) => r.hash),
      70_000,
    );
    const inMemory = aggregateRobust(choice, updates);
    const blockwise = await aggregateRobustBlockwise(choice, reader);
    expect(Buffer.from(blockwise.delta.buffer).equals(Buffer.from(inMemory.delta.buffer))).toBe(true);
    expect(blockwise.trace).toEqual(inMemory.trace);
  });

  it('screens over the blob store exactly as in memory', async () => {
    const updates = honestUpdates(6, 3000, 3);
    updates[2] = updates[2]!.map((x) => 10 * x);
    const { blobs, stored: rows } = await stored(updates);
    const reader = await BlobUpdateReader.open(
      blobs,
      rows.map((r) => r.hash),
      3000,
    );
    const aggregate = aggregateRobust({ aggregator: { kind: 'coordinate-median' } }, updates).delta;
    const inMemory = screenUpdates(updates, { aggregate });
    expect(inMemory.flagged).toEqual([2]);
    expect(await screenUpdatesBlockwise(reader, { aggregate })).toEqual(inMemory);
    // Smaller blocks sum in another order: the same flags, figures equal to rounding.
    const small = await screenUpdatesBlockwise(reader, { aggregate }, { blockParameters: 100 });
    expect(small.flagged).toEqual([2]);
    small.updates.forEach((u, k) => expect(u.norm).toBeCloseTo(inMemory.updates[k]!.norm, 9));
  });

  it('gives the bytes before the payload: with the blocks read into slots, they hash to the blob’s name', async () => {
    const updates = honestUpdates(3, 1001, 5);
    const { blobs, stored: rows } = await stored(updates);
    const reader = await BlobUpdateReader.open(
      blobs,
      rows.map((r) => r.hash),
      1001,
    );
    for (let k = 0; k < 3; k += 1) {
      const hash = createHash('sha256').update(reader.leadingBytes(k));
      // Blocks of 400: the last one short.
      for (let start = 0; start < 1001; start += 400) {
        const slot = new Float32Array(Math.min(1001, start + 400) - start);
        await reader.readInto(k, start, start + slot.length, slot);
        hash.update(new Uint8Array(slot.buffer));
      }
      expect(hash.digest('hex')).toBe(rows[k]!.hash);
    }
  });

  it('refuses a stored update whose payload is not the model size, naming it', async () => {
    const { blobs, stored: rows } = await stored(honestUpdates(2, 10, 4));
    await expect(BlobUpdateReader.open(blobs, [rows[0]!.hash], 11)).rejects.toThrow(
      `the stored update ${rows[0]!.hash} holds 10 values after its header; the model has 11`,
    );
  });

  it('refuses a blob that is not an update frame', async () => {
    const { blobs } = await stored([]);
    const hash = await blobs.put(Buffer.from('not an update frame at all'));
    await expect(BlobUpdateReader.open(blobs, [hash], 4)).rejects.toThrow(/does not start with/);
  });

  it('fails a read past a truncated blob instead of returning short data', async () => {
    const { blobs } = await stored([]);
    const frame = updateFrame(Float32Array.from([1, 2, 3, 4]));
    const hash = await blobs.put(frame);
    const reader = await BlobUpdateReader.open(blobs, [hash], 4);
    await expect(reader.readBlock(0, 2, 5)).rejects.toBeInstanceOf(BlobRangeError);
    await expect(reader.readBlock(1, 0, 1)).rejects.toThrow(/no update #1/);
  });
});
