import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { encodeUpdateFrame, float32Bytes, sha256Hex } from '@tessera/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditSigningKeyService } from '../audit/audit-signing-key.service';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import { FilesystemBlobStore } from '../blobs/filesystem-blob-store';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { PrivacyLedgerService } from '../privacy/privacy-ledger.service';
import type { SiloIdentity } from '../silos/silo-identity';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { InMemoryRounds, type WriteScope } from './in-memory-rounds.test-util';
import type { RoundsRepository } from './rounds.repository';
import { UpdateAcceptanceService, type UpdateAcceptance } from './update-acceptance.service';

/** The heart-disease plan's logistic regression: 13 features and a bias. */
const PARAMETERS = 14;

const siloNamed = (name: string): SiloIdentity => ({
  siloId: randomUUID(),
  name,
  certificateSerial: '01',
  certificateFingerprintSha256: 'f'.repeat(64),
  certificateNotAfter: new Date(Date.now() + 86_400_000),
});

function harness(siloCount = 2) {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-acceptance-'));
  const store = new InMemoryRounds();
  const blobs = new FilesystemBlobStore(dir);
  const written: { event: AuditEvent; scope: WriteScope | undefined }[] = [];
  /** Makes the audit trail refuse (throw) a record, as it refuses one that carries a secret (set by a test). */
  const refuseRecord: { when: ((event: AuditEvent) => boolean) | null } = { when: null };
  const audit = {
    record: (event: AuditEvent) => {
      if (refuseRecord.when?.(event)) return Promise.reject(new Error(`record refused: ${event.action}`));
      return Promise.resolve(void written.push({ event, scope: store.openScope() }));
    },
  } as unknown as AuditTrail;
  // A record is kept when it was written outside any transaction, or its transaction and savepoints were kept.
  const records = () => written.filter((r) => r.scope === undefined || store.didKeep(r.scope)).map((r) => r.event);
  const { privateKey } = generateKeyPairSync('ed25519');
  const signingKeys = { signingKey: () => Promise.resolve({ privateKey }) } as unknown as AuditSigningKeyService;
  const ledger = { mechanismOf: () => null } as unknown as PrivacyLedgerService;
  const service = new UpdateAcceptanceService(store as unknown as RoundsRepository, blobs, audit, signingKeys, ledger);
  const silos = Array.from({ length: siloCount }, (_, i) => siloNamed(['Basel', 'Bern'][i] ?? `Silo ${i + 1}`));
  const [a, b] = silos as [SiloIdentity, SiloIdentity];
  const ids = silos.map((s) => s.siloId);
  const study = store.seedStudy({ plan: heartDiseasePlan(ids), participants: ids });
  const round = store.seedRound({ studyId: study.id }, ids);
  /** An update frame for round 1 as an agent sends it; `shift` makes a different update. */
  const frame = (shift = 0, attempt = 1) => {
    const delta = new Float32Array(PARAMETERS).fill(0.02 + shift);
    const bytes = encodeUpdateFrame(
      {
        studyId: study.id,
        round: 1,
        attempt,
        planHash: study.planHash,
        baseModelHash: round.modelHash,
        numExamples: 50,
        length: PARAMETERS,
        payloadSha256: sha256Hex(float32Bytes(delta)),
        l2Norm: Math.hypot(...delta),
        evaluation: { kind: 'exact', loss: 0.6, accuracy: 0.7, auc: null, n: 10, positives: 5 },
        privacy: null,
      },
      delta,
    );
    return () => Readable.from([Buffer.from(bytes)]);
  };
  const storedBlobs = async () => {
    const hashes: string[] = [];
    for await (const blob of blobs.listing().list()) hashes.push(blob.hash);
    return hashes;
  };
  return { dir, store, service, records, refuseRecord, silos, a, b, study, round, frame, storedBlobs };
}

async function refusal(promise: Promise<unknown>): Promise<HubErrorCode> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof HubException)) throw new Error(`expected a refusal, got ${String(err)}`);
  return err.code;
}

// The first acceptance loads the model's definition (parameterCount): slow on a loaded machine.
describe('UpdateAcceptanceService over its repository', { timeout: 30_000 }, () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness();
  });
  afterEach(() => rmSync(h.dir, { recursive: true, force: true }));

  it('accepts an update: the row, the blob and one record, with a signed receipt', async () => {
    const { receipt, fresh } = await h.service.accept(h.a, h.study.id, 1, h.frame()());
    expect(fresh).toBe(true);
    expect(receipt).toMatchObject({ studyId: h.study.id, siloId: h.a.siloId, round: 1, attempt: 1 });
    expect(receipt.signature).toBeDefined();
    const row = h.store.participants.find((p) => p.siloId === h.a.siloId)!;
    expect(row).toMatchObject({ status: 'uploaded', updateHash: receipt.updateSha256, numExamples: 50 });
    expect(await h.storedBlobs()).toEqual([receipt.updateSha256]);
    expect(h.records().map((e) => e.action)).toEqual(['round.update.accepted']);
  });

  it('answers an identical re-send with the original receipt, storing and recording nothing twice', async () => {
    const send = h.frame();
    const first = await h.service.accept(h.a, h.study.id, 1, send());
    const again = await h.service.accept(h.a, h.study.id, 1, send());
    expect(again).toEqual({ receipt: first.receipt, fresh: false });
    expect(h.records().map((e) => e.action)).toEqual(['round.update.accepted']);
  });

  it('refuses a different update for a round the silo already reported (DUPLICATE_UPDATE), storing nothing', async () => {
    const first = await h.service.accept(h.a, h.study.id, 1, h.frame()());
    expect(await refusal(h.service.accept(h.a, h.study.id, 1, h.frame(1)()))).toBe(HubErrorCode.DUPLICATE_UPDATE);
    expect(await h.storedBlobs()).toEqual([first.receipt.updateSha256]);
    expect(h.store.participants.find((p) => p.siloId === h.a.siloId)!.updateHash).toBe(first.receipt.updateSha256);
    expect(h.records().map((e) => e.action)).toEqual(['round.update.accepted', 'round.update.refused']);
  });

  it('two different updates from one silo racing: the round lock lets one in, the other is refused', async () => {
    const outcomes = await Promise.allSettled([
      h.service.accept(h.a, h.study.id, 1, h.frame()()),
      h.service.accept(h.a, h.study.id, 1, h.frame(1)()),
    ]);
    const accepted = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value.receipt.updateSha256] : []));
    const refused = outcomes.flatMap((o) =>
      o.status === 'rejected' && o.reason instanceof HubException ? [o.reason.code] : [],
    );
    expect(accepted).toHaveLength(1);
    expect(refused).toEqual([HubErrorCode.DUPLICATE_UPDATE]);
    expect(await h.storedBlobs()).toEqual(accepted);
    expect(h.records().filter((e) => e.action === 'round.update.accepted')).toHaveLength(1);
  });

  it('after the round closed, answers a re-send with its receipt and refuses any other update', async () => {
    const send = h.frame();
    const first = await h.service.accept(h.a, h.study.id, 1, send());
    await h.store.inTransaction((tx) => tx.endAttempt(h.round.id, { status: 'closed', closedAt: new Date() }));
    const again = await h.service.accept(h.a, h.study.id, 1, send());
    expect(again).toEqual({ receipt: first.receipt, fresh: false });
    expect(await refusal(h.service.accept(h.a, h.study.id, 1, h.frame(1)()))).toBe(HubErrorCode.DUPLICATE_UPDATE);
    // A silo that never reported gets the round's own refusal.
    expect(await refusal(h.service.accept(h.b, h.study.id, 1, h.frame()()))).toBe(HubErrorCode.ROUND_CLOSED);
    expect(await h.storedBlobs()).toEqual([first.receipt.updateSha256]);
  });

  it('refuses an update trained on another model before storing a byte', async () => {
    await h.store.inTransaction(async (tx) => {
      await tx.lockRound(h.round.id);
      await tx.endAttempt(h.round.id, { status: 'retried', closedAt: new Date() });
      await tx.insertRound({ ...h.round, attempt: 2, modelHash: 'ef'.repeat(32), status: 'open' });
    });
    expect(await refusal(h.service.accept(h.b, h.study.id, 1, h.frame(0, 2)()))).toBe(HubErrorCode.WRONG_MODEL);
    expect(await h.storedBlobs()).toEqual([]);
  });
});

/** Holds the round's row lock in a transaction of its own until released: acceptances queue behind it. */
async function holdRound(h: ReturnType<typeof harness>): Promise<{ release: () => Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const holder = h.store.inTransaction(async (tx) => {
    await tx.lockRound(h.round.id);
    locked();
    await released;
  });
  await isLocked;
  return {
    release: async () => {
      release();
      await holder;
    },
  };
}

/**
 * Starts an acceptance and waits until it is handed to the round's acceptance batches (so the order is known); the
 * acceptance itself is in `done` (an async function would flatten it into its own promise).
 */
async function handedOver<T>(h: ReturnType<typeof harness>, start: () => Promise<T>): Promise<{ done: Promise<T> }> {
  const before = h.service.pendingAcceptances(h.round.id);
  const running = start();
  // Keeps an early rejection from being reported as unhandled while the test waits; the test awaits it later.
  running.catch(() => undefined);
  const end = Date.now() + 10_000;
  while (h.service.pendingAcceptances(h.round.id) === before) {
    if (Date.now() > end) throw new Error('the acceptance never reached its transaction');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return { done: running };
}

/** The transactions that took the round's row lock, in order (acceptance batches, and a test's holder). */
function roundTransactions(h: ReturnType<typeof harness>): number[] {
  const lockedRound = h.store.lockLog.filter((l) => l.key === `round:${h.round.id}`).map((l) => l.transaction);
  return [...new Set(lockedRound)];
}

/** The silos whose rows a transaction wrote (their row locks, taken by the UPDATE). */
function siloRowsOf(h: ReturnType<typeof harness>, transaction: number): string[] {
  return h.store.lockLog
    .filter((l) => l.transaction === transaction && l.key.startsWith(`participant:${h.round.id}:`))
    .map((l) => l.key.slice(`participant:${h.round.id}:`.length));
}

/** An acceptance's outcome: its value, or what refused it. */
type Outcome = { value: UpdateAcceptance } | { error: unknown };
/** N outcomes, one per upload of a batch, in order. */
type Outcomes<N extends number, T extends Outcome[] = []> = T['length'] extends N ? T : Outcomes<N, [...T, Outcome]>;

async function outcomeOf<T>(promise: Promise<T>): Promise<{ value: T } | { error: unknown }> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

describe('UpdateAcceptanceService: group commit of one round’s acceptances', { timeout: 30_000 }, () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness(8);
  });
  /** An upload of round 1, handed to the round's acceptance batches before this resolves; `done` is its answer. */
  const queued = (silo: SiloIdentity, body: Readable) =>
    handedOver(h, () => h.service.accept(silo, h.study.id, 1, body));
  afterEach(() => rmSync(h.dir, { recursive: true, force: true }));

  it('8 uploads arriving while a transaction holds the round share 2 transactions, each accepted on its own', async () => {
    const hold = await holdRound(h);
    const sends: Promise<UpdateAcceptance>[] = [];
    for (const [i, silo] of h.silos.entries()) {
      sends.push((await queued(silo, h.frame(i / 1000)())).done);
    }
    await hold.release();
    const results = await Promise.all(sends);

    expect(results.map((r) => r.fresh)).toEqual(h.silos.map(() => true));
    const [, ...acceptances] = roundTransactions(h);
    // The first upload started a transaction alone (blocked on the holder's lock); the other 7 waited and went together.
    expect(acceptances).toHaveLength(2);
    expect(siloRowsOf(h, acceptances[0]!)).toEqual([h.silos[0]!.siloId]);
    expect(siloRowsOf(h, acceptances[1]!)).toEqual(h.silos.slice(1).map((s) => s.siloId));
    // Lock order: every acceptance transaction takes the round's row lock before any other.
    for (const t of acceptances)
      expect(h.store.lockLog.find((l) => l.transaction === t)!.key).toBe(`round:${h.round.id}`);
    // Refusals are decided before any write: a batch where nothing fails takes no savepoint.
    expect(h.store.savepointCount).toBe(0);
    for (const [i, silo] of h.silos.entries()) {
      const row = h.store.participants.find((p) => p.siloId === silo.siloId)!;
      expect(row).toMatchObject({ status: 'uploaded', updateHash: results[i]!.receipt.updateSha256 });
      expect(results[i]!.receipt).toMatchObject({ siloId: silo.siloId, round: 1, attempt: 1 });
      expect(results[i]!.receipt.signature).toBeDefined();
    }
    const accepted = h.records().filter((e) => e.action === 'round.update.accepted');
    expect(accepted.map((e) => e.subject?.siloId)).toEqual(h.silos.map((s) => s.siloId));
    expect((await h.storedBlobs()).sort()).toEqual(results.map((r) => r.receipt.updateSha256).sort());
  });

  it('a refusal in the middle of a batch refuses that upload alone, with its record; a re-send gets the receipt', async () => {
    const [s1, s2, s3, s4, s5] = h.silos as [SiloIdentity, SiloIdentity, SiloIdentity, SiloIdentity, SiloIdentity];
    const hold = await holdRound(h);
    const first = (await queued(s1, h.frame(0.1)())).done;
    const sendS3 = h.frame(0.3);
    const batch = [
      (await queued(s2, h.frame(0.2)())).done,
      (await queued(s3, sendS3())).done,
      // s3 again with a different update, then with the identical one, in the same batch as its first.
      (await queued(s3, h.frame(0.33)())).done,
      (await queued(s3, sendS3())).done,
      (await queued(s4, h.frame(0.4)())).done,
      (await queued(s5, h.frame(0.5)())).done,
    ];
    await hold.release();
    await first;
    const [o2, o3, o3other, o3again, o4, o5] = (await Promise.all(batch.map(outcomeOf))) as Outcomes<6>;

    const [, , batchTx] = roundTransactions(h);
    expect(siloRowsOf(h, batchTx!)).toEqual([s2, s3, s4, s5].map((s) => s.siloId));
    expect('error' in o3other && o3other.error instanceof HubException && o3other.error.code).toBe(
      HubErrorCode.DUPLICATE_UPDATE,
    );
    const accepted = [o2, o3, o4, o5].map((o) => ('value' in o ? o.value : o.error));
    for (const a of accepted) expect(a).toMatchObject({ fresh: true });
    const s3Receipt = (o3 as { value: UpdateAcceptance }).value.receipt;
    // The identical re-send: the same signed receipt as the first, nothing stored or recorded twice.
    expect(o3again).toEqual({ value: { receipt: s3Receipt, fresh: false } });
    expect(h.store.participants.find((p) => p.siloId === s3.siloId)!.updateHash).toBe(s3Receipt.updateSha256);

    const records = h.records();
    expect(records.filter((e) => e.action === 'round.update.accepted').map((e) => e.subject?.siloId)).toEqual(
      [s1, s2, s3, s4, s5].map((s) => s.siloId),
    );
    const refused = records.filter((e) => e.action === 'round.update.refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({
      subject: { studyId: h.study.id, siloId: s3.siloId },
      details: { round: 1, code: HubErrorCode.DUPLICATE_UPDATE },
    });
    // The refused update's bytes were never committed.
    expect(await h.storedBlobs()).toHaveLength(5);
  });

  it('an upload that fails after its row was written: the batch runs again, a savepoint each, and it fails alone', async () => {
    const [s1, s2, s3, s4] = h.silos as [SiloIdentity, SiloIdentity, SiloIdentity, SiloIdentity];
    // The audit trail refuses s3's record, after its row was written in the batch transaction.
    h.refuseRecord.when = (e) => e.action === 'round.update.accepted' && e.subject?.siloId === s3.siloId;
    const hold = await holdRound(h);
    const first = (await queued(s1, h.frame(0.1)())).done;
    const batch = [
      (await queued(s2, h.frame(0.2)())).done,
      (await queued(s3, h.frame(0.3)())).done,
      (await queued(s4, h.frame(0.4)())).done,
    ];
    await hold.release();
    await first;
    const [o2, o3, o4] = (await Promise.all(batch.map(outcomeOf))) as Outcomes<3>;

    expect(o2).toMatchObject({ value: { fresh: true } });
    expect(o4).toMatchObject({ value: { fresh: true } });
    expect('error' in o3 && String(o3.error)).toContain('record refused: round.update.accepted');
    // The holder, s1's batch, the batch of s2-s4 without savepoints (lost when s3's record failed), and again with.
    const [, , lost, again] = roundTransactions(h);
    expect(roundTransactions(h)).toHaveLength(4);
    expect([lost, again].map((t) => h.store.didCommit(t!))).toEqual([false, true]);
    expect(h.store.savepointCount).toBe(3);
    // s2's bytes were committed in the lost run (a rename) and its row named them in the second: the blob is there.
    expect(await h.storedBlobs()).toContain((o2 as { value: UpdateAcceptance }).value.receipt.updateSha256);
    const status = (s: SiloIdentity) => h.store.participants.find((p) => p.siloId === s.siloId)!.status;
    expect([s1, s2, s3, s4].map(status)).toEqual(['uploaded', 'uploaded', 'waiting', 'uploaded']);
    expect(h.records().map((e) => [e.action, e.subject?.siloId])).toEqual(
      [s1, s2, s4].map((s) => ['round.update.accepted', s.siloId]),
    );

    // Like any failed acceptance, it succeeds when the agent retries.
    h.refuseRecord.when = null;
    expect(await h.service.accept(s3, h.study.id, 1, h.frame(0.3)())).toMatchObject({ fresh: true });
    expect(status(s3)).toBe('uploaded');
  });

  it('a transaction that fails at COMMIT fails every upload of its batch, and only that batch', async () => {
    const [s1, s2, s3, s4] = h.silos as [SiloIdentity, SiloIdentity, SiloIdentity, SiloIdentity];
    const lost = new Error('connection to the database lost at COMMIT');
    // The transaction that wrote s3's row fails at COMMIT, as a database error there would.
    h.store.beforeCommit = (t) => {
      if (siloRowsOf(h, t).includes(s3.siloId)) throw lost;
    };
    const hold = await holdRound(h);
    const first = (await queued(s1, h.frame(0.1)())).done;
    const sendS3 = h.frame(0.3);
    const batch = [
      (await queued(s2, h.frame(0.2)())).done,
      (await queued(s3, sendS3())).done,
      (await queued(s4, h.frame(0.4)())).done,
    ];
    await hold.release();
    expect(await first).toMatchObject({ fresh: true });
    const outcomes = await Promise.all(batch.map(outcomeOf));

    expect(outcomes).toEqual([{ error: lost }, { error: lost }, { error: lost }]);
    const status = (s: SiloIdentity) => h.store.participants.find((p) => p.siloId === s.siloId)!.status;
    expect([s1, s2, s3, s4].map(status)).toEqual(['uploaded', 'waiting', 'waiting', 'waiting']);
    // Nothing of the batch is recorded: neither acceptances (rolled back) nor refusals (a failure is no refusal).
    expect(h.records().map((e) => [e.action, e.subject?.siloId])).toEqual([['round.update.accepted', s1.siloId]]);

    // The agents retry, as they do when their transaction fails today.
    h.store.beforeCommit = null;
    const retried = await Promise.all([
      h.service.accept(s2, h.study.id, 1, h.frame(0.2)()),
      h.service.accept(s3, h.study.id, 1, sendS3()),
      h.service.accept(s4, h.study.id, 1, h.frame(0.4)()),
    ]);
    expect(retried.map((r) => r.fresh)).toEqual([true, true, true]);
    expect([s1, s2, s3, s4].map(status)).toEqual(['uploaded', 'uploaded', 'uploaded', 'uploaded']);
  });

  it('a round closed while uploads waited refuses each of them ROUND_CLOSED, with a record each', async () => {
    const [s1, s2, s3] = h.silos as [SiloIdentity, SiloIdentity, SiloIdentity];
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    // The closer holds the round and closes it while the uploads wait for its lock.
    const closer = h.store.inTransaction(async (tx) => {
      await tx.lockRound(h.round.id);
      locked();
      await released;
      await tx.endAttempt(h.round.id, { status: 'closed', closedAt: new Date() });
    });
    await isLocked;
    const sends = [
      (await queued(s1, h.frame(0.1)())).done,
      (await queued(s2, h.frame(0.2)())).done,
      (await queued(s3, h.frame(0.3)())).done,
    ];
    release();
    await closer;
    const codes = await Promise.all(sends.map((p) => refusal(p)));
    expect(codes).toEqual([HubErrorCode.ROUND_CLOSED, HubErrorCode.ROUND_CLOSED, HubErrorCode.ROUND_CLOSED]);
    expect(h.records().map((e) => [e.action, e.subject?.siloId])).toEqual(
      [s1, s2, s3].map((s) => ['round.update.refused', s.siloId]),
    );
    expect(await h.storedBlobs()).toEqual([]);
  });
});
