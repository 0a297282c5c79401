import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeUpdateFrame, float32Bytes, sha256Hex, type UpdateHeader } from '@tessera/protocol';
import { FilesystemBlobStore } from '../blobs/filesystem-blob-store';
import type { StoredUpdate } from './round-aggregation';

/** Seeded standard normal samples (mulberry32 and Box–Muller): reproducible test updates. */
export function seededNormal(seed: number): () => number {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** `count` updates around a common direction (signal + noise), as honest silos of one study would send. */
export function honestUpdates(count: number, length: number, seed: number): Float32Array[] {
  const normal = seededNormal(seed);
  const signal = Float32Array.from({ length }, () => normal());
  return Array.from({ length: count }, () => Float32Array.from(signal, (x) => x + 0.5 * normal()));
}

export function l2(values: Float32Array): number {
  let s = 0;
  for (const v of values) s += v * v;
  return Math.sqrt(s);
}

/** An update frame as an agent uploads it; `header` names the study, round and model it answers. */
export function updateFrame(
  delta: Float32Array,
  numExamples: number | null = null,
  header: Partial<UpdateHeader> = {},
): Buffer {
  return encodeUpdateFrame(
    {
      studyId: '7f3c2b1a-9e8d-4c6b-a5f4-3e2d1c0b9a87',
      round: 1,
      attempt: 1,
      planHash: 'a'.repeat(64),
      baseModelHash: 'b'.repeat(64),
      numExamples,
      length: delta.length,
      payloadSha256: sha256Hex(float32Bytes(delta)),
      l2Norm: l2(delta),
      evaluation: null,
      privacy: null,
      ...header,
    },
    delta,
  );
}

/** A filesystem blob store in a temporary directory, and the round's updates stored in it as the receiver would. */
export async function storeUpdates(
  updates: readonly Float32Array[],
): Promise<{ blobs: FilesystemBlobStore; stored: StoredUpdate[]; dispose: () => void }> {
  const root = mkdtempSync(join(tmpdir(), 'tessera-round-'));
  const blobs = new FilesystemBlobStore(root);
  const stored: StoredUpdate[] = [];
  for (const [k, u] of updates.entries()) {
    stored.push({ siloId: `silo-${k}`, hash: await blobs.put(updateFrame(u)), l2Norm: l2(u), numExamples: null });
  }
  return { blobs, stored, dispose: () => rmSync(root, { recursive: true, force: true }) };
}
