import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { float32Bytes, sha256Hex, type StudyPlan } from '@tessera/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { BlobIntegrityError } from '../blobs/blob-store.exception';
import { FilesystemBlobStore } from '../blobs/filesystem-blob-store';
import type { HubConfig } from '../config/config.schema';
import type { PrivacyLedgerService } from '../privacy/privacy-ledger.service';
import type { SecAggSessionsService } from '../secagg/secagg-sessions.service';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { InMemoryRounds } from './in-memory-rounds.test-util';
import { float32FromBytes } from './model-math';
import { RoundAggregator } from './round-aggregator.service';
import type { RoundsRepository } from './rounds.repository';
import { honestUpdates, storeUpdates, updateFrame } from './stored-updates.test-util';

/** The heart-disease plan's logistic regression: 13 features and a bias. */
const PARAMETERS = 14;

async function harness(updates: number) {
  const bed = await storeUpdates(honestUpdates(updates, PARAMETERS, 7));
  const store = new InMemoryRounds();
  const silos = bed.stored.map((s) => s.siloId);
  const study = store.seedStudy({ plan: heartDiseasePlan(silos), participants: silos });
  const modelHash = await bed.blobs.put(float32Bytes(new Float32Array(PARAMETERS)));
  const round = store.seedRound({ studyId: study.id, modelHash, status: 'closing' }, silos);
  for (const s of bed.stored) {
    store.seedParticipant(round.id, s.siloId, { status: 'uploaded', updateHash: s.hash, l2Norm: s.l2Norm });
  }
  const config = { aggregationMemory: 1 << 30, aggregationBlockParameters: 1 << 20, aggregationThreads: 0 };
  const aggregator = new RoundAggregator(
    store as unknown as RoundsRepository,
    bed.blobs,
    { mechanismOf: () => null } as unknown as PrivacyLedgerService,
    config as HubConfig,
    {} as SecAggSessionsService,
  );
  return { ...bed, store, round, silos, aggregator };
}

describe('RoundAggregator (step 2 of a close) over its repository', { timeout: 30_000 }, () => {
  let dispose = () => undefined as void;
  afterEach(() => dispose());

  it('aggregates the usable updates of the claimed round into a stored model, changing no row', async () => {
    const h = await harness(3);
    dispose = h.dispose;
    const before = h.store.rounds;
    const aggregate = await h.aggregator.aggregateClaimed(h.round.id, { verifyMs: 0 });
    expect([...aggregate.aggregated].sort()).toEqual([...h.silos].sort());
    expect(aggregate.unusable.size).toBe(0);
    expect(float32FromBytes(await h.blobs.get(aggregate.resultHash))).toHaveLength(PARAMETERS);
    expect(await h.blobs.has(aggregate.stateHash)).toBe(true);
    expect(h.store.rounds).toEqual(before);
  });

  it('sets aside an update whose stored bytes are gone, and aggregates the others', async () => {
    const h = await harness(3);
    dispose = h.dispose;
    const missing = 'ef'.repeat(32);
    h.store.seedParticipant(h.round.id, h.silos[2]!, { updateHash: missing });
    const aggregate = await h.aggregator.aggregateClaimed(h.round.id, { verifyMs: 0 });
    expect([...aggregate.aggregated].sort()).toEqual([h.silos[0], h.silos[1]].sort());
    expect(aggregate.unusable.get(h.silos[2]!)).toMatch(new RegExp(`^the stored update ${missing} cannot be read`));
  });

  it('returns no aggregate when fewer usable updates remain than the plan needs', async () => {
    const h = await harness(2);
    dispose = h.dispose;
    h.store.seedParticipant(h.round.id, h.silos[1]!, { updateHash: 'ef'.repeat(32) });
    const aggregate = await h.aggregator.aggregateClaimed(h.round.id, { verifyMs: 0 });
    expect(aggregate).toMatchObject({ aggregated: [], resultHash: '', stateHash: '' });
    expect([...aggregate.unusable.keys()]).toEqual([h.silos[1]]);
  });
});

/**
 * A filesystem store that counts what the closer reads of each blob (ranged bytes, whole reads) and reports corrupted
 * blobs as the hub's does (to the audit trail); `tamper` may change the bytes of a ranged read as they come back.
 */
class WatchedStore extends FilesystemBlobStore {
  readonly rangedBytes = new Map<string, number>();
  readonly wholeReads: string[] = [];
  readonly integrityFailures: BlobIntegrityError[] = [];
  tamper: ((hash: string, start: number, end: number, bytes: Uint8Array) => void) | null = null;

  constructor(readonly directory: string) {
    super(directory, { onIntegrityFailure: (err) => this.integrityFailures.push(err) });
  }

  override async readRange(hash: string, start: number, end: number): Promise<Buffer> {
    const bytes = await super.readRange(hash, start, end);
    this.rangedBytes.set(hash, (this.rangedBytes.get(hash) ?? 0) + bytes.length);
    this.tamper?.(hash, start, end, bytes);
    return bytes;
  }

  /** The fused sum's reads straight into its slots: counted and open to tampering like readRange. */
  override async readRangeInto(hash: string, start: number, target: Uint8Array): Promise<void> {
    await super.readRangeInto(hash, start, target);
    this.rangedBytes.set(hash, (this.rangedBytes.get(hash) ?? 0) + target.length);
    this.tamper?.(hash, start, start + target.length, target);
  }

  override async get(hash: string): Promise<Buffer> {
    this.wholeReads.push(hash);
    return super.get(hash);
  }

  fileOf(hash: string): string {
    return join(this.directory, hash.slice(0, 2), hash);
  }
}

/** A round of `updates` (silo ids given) closing in a store of its own, aggregated on `threads` sum threads. */
async function watchedRound(
  updates: readonly Float32Array[],
  silos: readonly string[],
  threads: number,
  plan: (silos: string[]) => StudyPlan = (s) => heartDiseasePlan(s),
) {
  const root = mkdtempSync(join(tmpdir(), 'tessera-close-'));
  const blobs = new WatchedStore(root);
  const store = new InMemoryRounds();
  const studyPlan = plan([...silos]);
  studyPlan.participation.minSilosPerRound = 3;
  const study = store.seedStudy({ plan: studyPlan, participants: [...silos] });
  const modelHash = await blobs.put(float32Bytes(new Float32Array(updates[0]!.length)));
  const round = store.seedRound({ studyId: study.id, modelHash, status: 'closing' }, [...silos]);
  const hashes: string[] = [];
  for (const [k, u] of updates.entries()) {
    const hash = await blobs.put(updateFrame(u));
    hashes.push(hash);
    store.seedParticipant(round.id, silos[k]!, { status: 'uploaded', updateHash: hash, l2Norm: null });
  }
  const config = { aggregationMemory: 1 << 30, aggregationBlockParameters: 65_536, aggregationThreads: threads };
  const aggregator = new RoundAggregator(
    store as unknown as RoundsRepository,
    blobs,
    { mechanismOf: () => null } as unknown as PrivacyLedgerService,
    config as HubConfig,
    {} as SecAggSessionsService,
  );
  blobs.rangedBytes.clear();
  blobs.wholeReads.length = 0;
  return {
    blobs,
    hashes,
    aggregator,
    round,
    dispose: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** One bit of the stored update's last float32 changed on disk; returns the bytes it now holds. */
function corruptOnDisk(blobs: WatchedStore, hash: string): Buffer {
  const bytes = readFileSync(blobs.fileOf(hash));
  bytes[bytes.length - 1]! ^= 0x40;
  writeFileSync(blobs.fileOf(hash), bytes);
  return bytes;
}

describe('RoundAggregator: stored updates checked while they are aggregated (ADR 0021)', { timeout: 60_000 }, () => {
  // Two blocks of the fused sum (262,144 values), the second short.
  const M = 300_007;
  const SILOS = ['silo-a', 'silo-b', 'silo-c', 'silo-d', 'silo-e'];
  const updates = honestUpdates(SILOS.length, M, 5);
  const disposals: (() => void)[] = [];
  afterEach(() => {
    for (const d of disposals.splice(0)) d();
  });
  async function round(...args: Parameters<typeof watchedRound>) {
    const r = await watchedRound(...args);
    disposals.push(r.dispose);
    return r;
  }

  it.each([0, 2])('reads each stored update once, hashing it as it is summed (%i sum threads)', async (threads) => {
    const r = await round(updates, SILOS, threads);
    const timing = { verifyMs: 0 };
    const aggregate = await r.aggregator.aggregateClaimed(r.round.id, timing);
    expect(aggregate.aggregated).toEqual(SILOS);
    expect(aggregate.unusable.size).toBe(0);
    expect(timing.verifyMs).toBe(0);
    // No separate verification: no whole read of an update, and each read in ranges once (its prefix twice: the
    // 8 bytes that give the header's length, then the prefix and header, hashed ahead of the payload).
    expect(r.blobs.wholeReads.filter((h) => r.hashes.includes(h))).toEqual([]);
    for (const hash of r.hashes) {
      const size = readFileSync(r.blobs.fileOf(hash)).length;
      expect(r.blobs.rangedBytes.get(hash)).toBe(size + 8);
    }
  });

  it.each([0, 2])(
    'sets aside an update corrupted on disk as before (audit, cause), and aggregates the others (%i threads)',
    async (threads) => {
      const r = await round(updates, SILOS, threads);
      const now = corruptOnDisk(r.blobs, r.hashes[2]!);
      const timing = { verifyMs: 0 };
      const aggregate = await r.aggregator.aggregateClaimed(r.round.id, timing);
      expect([...aggregate.unusable]).toEqual([
        ['silo-c', `the stored update ${r.hashes[2]} is corrupted on disk (its bytes hash to ${sha256Hex(now)})`],
      ]);
      // The store's own verified read reported it (the hub's reporter writes blob.integrity.failed).
      expect(r.blobs.integrityFailures.map((e) => [e.hash, e.actualHash])).toEqual([[r.hashes[2], sha256Hex(now)]]);
      expect(timing.verifyMs).toBeGreaterThan(0);
      expect(aggregate.aggregated).toEqual(['silo-a', 'silo-b', 'silo-d', 'silo-e']);
      // The model is the one a round of the four others gives, bit for bit.
      const others = await round(
        updates.filter((_, k) => k !== 2),
        SILOS.filter((_, k) => k !== 2),
        threads,
      );
      const expected = await others.aggregator.aggregateClaimed(others.round.id, { verifyMs: 0 });
      expect(aggregate.resultHash).toBe(expected.resultHash);
      expect(aggregate.stateHash).toBe(expected.stateHash);
      expect(aggregate.trace).toEqual(expected.trace);
    },
  );

  it('sets aside an update whose bytes changed only while the round read them', async () => {
    const r = await round(updates, SILOS, 2);
    let tampered = 0;
    r.blobs.tamper = (hash, _start, end, bytes) => {
      // The fused sum's read of silo-d's last block, once; the re-check reads it intact.
      if (hash === r.hashes[3] && tampered === 0 && end === readFileSync(r.blobs.fileOf(hash)).length) {
        tampered += 1;
        bytes[0]! ^= 1;
      }
    };
    const aggregate = await r.aggregator.aggregateClaimed(r.round.id, { verifyMs: 0 });
    expect(tampered).toBe(1);
    expect(aggregate.unusable.get('silo-d')).toMatch(
      new RegExp(
        `^the stored update ${r.hashes[3]} changed while the round read it \\(the bytes read hashed to [0-9a-f]{64}; read again, they match its name\\)$`,
      ),
    );
    expect(r.blobs.integrityFailures).toEqual([]);
    const others = await round(
      updates.filter((_, k) => k !== 3),
      SILOS.filter((_, k) => k !== 3),
      2,
    );
    expect(aggregate.resultHash).toBe(
      (await others.aggregator.aggregateClaimed(others.round.id, { verifyMs: 0 })).resultHash,
    );
  });

  it('returns no aggregate when the corrupted updates leave fewer than the plan needs', async () => {
    const r = await round(updates.slice(0, 3), SILOS.slice(0, 3), 2);
    corruptOnDisk(r.blobs, r.hashes[0]!);
    const aggregate = await r.aggregator.aggregateClaimed(r.round.id, { verifyMs: 0 });
    expect(aggregate).toMatchObject({ aggregated: [], resultHash: '' });
    expect([...aggregate.unusable.keys()]).toEqual(['silo-a']);
  });

  it('verifies first, as before, for a robust aggregator', async () => {
    const r = await round(updates, SILOS, 2, (s) =>
      heartDiseasePlan(s, { aggregation: { aggregator: { kind: 'coordinate-median' } } }),
    );
    const now = corruptOnDisk(r.blobs, r.hashes[1]!);
    const timing = { verifyMs: 0 };
    const aggregate = await r.aggregator.aggregateClaimed(r.round.id, timing);
    expect(aggregate.unusable.get('silo-b')).toBe(
      `the stored update ${r.hashes[1]} is corrupted on disk (its bytes hash to ${sha256Hex(now)})`,
    );
    expect(aggregate.aggregated).toEqual(['silo-a', 'silo-c', 'silo-d', 'silo-e']);
    expect(timing.verifyMs).toBeGreaterThan(0);
    // The verify-first pass read every update in ranges before the median read them again.
    for (const hash of r.hashes.filter((_, k) => k !== 1)) {
      expect(r.blobs.rangedBytes.get(hash)).toBeGreaterThanOrEqual(readFileSync(r.blobs.fileOf(hash)).length);
    }
  });
});
