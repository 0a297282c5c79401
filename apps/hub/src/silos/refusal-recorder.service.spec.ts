import { AsyncLocalStorage } from 'node:async_hooks';
import type { PinoLogger } from 'nestjs-pino';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import { RowLocks } from './in-memory-silos.test-util';
import {
  REFUSAL_MAX_ADDRESSES,
  REFUSAL_RECORD_INTERVAL_MS,
  RefusalRecorder,
  type Refusal,
} from './refusal-recorder.service';
import type { RefusalKey, RefusalRow, RefusalsUnitOfWork, SiloRefusalsRepository } from './silo-refusals.repository';

const keyText = (key: RefusalKey) => `${key.fingerprintSha256}/${key.reasonSha256}`;

/**
 * `silo_identity_refusals` in memory: one row per identity and reason, locked until the transaction that locked it
 * ends, changes kept only when the transaction's work resolves, the SQL's rules for the pending addresses (distinct,
 * at most `maxAddresses`).
 */
class InMemoryRefusals implements Pick<SiloRefusalsRepository, 'inTransaction' | 'dueKeys'> {
  rows = new Map<string, RefusalRow>();
  private readonly locks = new RowLocks();
  private readonly context = new AsyncLocalStorage<number>();
  private readonly committed = new Set<number>();
  private transactions = 0;

  openTransaction(): number | undefined {
    return this.context.getStore();
  }

  didCommit(transaction: number): boolean {
    return this.committed.has(transaction);
  }

  dueKeys(cutoff: Date): Promise<RefusalKey[]> {
    const due = [...this.rows.values()].filter(
      (r) => r.pendingCount > 0 && (r.lastRecordedAt === null || r.lastRecordedAt <= cutoff),
    );
    return Promise.resolve(due.map((r) => ({ fingerprintSha256: r.fingerprintSha256, reasonSha256: r.reasonSha256 })));
  }

  async inTransaction<T>(work: (tx: RefusalsUnitOfWork) => Promise<T>): Promise<T> {
    const id = ++this.transactions;
    const writes = new Map<string, RefusalRow>();
    const releases: (() => void)[] = [];
    const held = new Set<string>();
    const lockKey = async (key: RefusalKey) => {
      if (held.has(keyText(key))) return;
      held.add(keyText(key));
      releases.push(await this.locks.acquire(keyText(key)));
    };
    const current = (key: RefusalKey) => writes.get(keyText(key)) ?? this.rows.get(keyText(key));
    const change = (key: RefusalKey, patch: Partial<RefusalRow>) => {
      const row = current(key);
      if (row) writes.set(keyText(key), { ...row, ...patch });
    };
    try {
      const result = await this.context.run(id, () =>
        work({
          // An insert that meets another transaction's uncommitted row waits for it (the unique index), then does nothing.
          ensureRow: async (key, facts) => {
            await lockKey(key);
            if (!current(key)) {
              writes.set(keyText(key), {
                ...key,
                action: facts.action,
                actor: facts.actor,
                reason: facts.reason,
                subject: null,
                kind: null,
                pendingCount: 0,
                pendingFirstAt: null,
                pendingLastAt: null,
                pendingRemoteAddresses: [],
                lastRecordedAt: null,
              });
            }
          },
          lock: async (key) => {
            await lockKey(key);
            const row = current(key);
            return row ? { ...row, pendingRemoteAddresses: [...row.pendingRemoteAddresses] } : undefined;
          },
          countPending: (key, refusal, latest) => {
            const row = current(key);
            if (!row) return Promise.resolve();
            const addresses = row.pendingRemoteAddresses;
            const add =
              refusal.remoteAddress !== null &&
              !addresses.includes(refusal.remoteAddress) &&
              addresses.length < refusal.maxAddresses;
            change(key, {
              pendingCount: row.pendingCount + 1,
              pendingFirstAt: row.pendingFirstAt ?? refusal.at,
              pendingLastAt: refusal.at,
              pendingRemoteAddresses: add ? [...addresses, refusal.remoteAddress!] : addresses,
              ...latest,
            });
            return Promise.resolve();
          },
          clearPending: (key, recordedAt) => {
            change(key, {
              pendingCount: 0,
              pendingFirstAt: null,
              pendingLastAt: null,
              pendingRemoteAddresses: [],
              lastRecordedAt: recordedAt,
            });
            return Promise.resolve();
          },
        }),
      );
      for (const [key, row] of writes) this.rows.set(key, row);
      this.committed.add(id);
      return result;
    } finally {
      for (const release of releases) release();
    }
  }
}

const T0 = new Date('2026-12-07T10:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const FINGERPRINT = 'a'.repeat(64);

function refusal(over: Partial<Refusal> = {}): Refusal {
  return {
    action: 'silo.identity.refused',
    actor: { type: 'silo', id: 'silo-1' },
    fingerprintSha256: FINGERPRINT,
    reason: 'This client certificate (serial 01) was revoked: key lost.',
    remoteAddress: '10.0.0.7',
    ...over,
  };
}

function harness() {
  const store = new InMemoryRefusals();
  const written: { event: AuditEvent; tx: number | undefined }[] = [];
  let failNext = false;
  const audit: AuditTrail = {
    record: (event: AuditEvent) => {
      if (failNext) {
        failNext = false;
        return Promise.reject(new Error('the database went away'));
      }
      written.push({ event, tx: store.openTransaction() });
      return Promise.resolve();
    },
  };
  const recorder = new RefusalRecorder(store as unknown as SiloRefusalsRepository, audit, {} as PinoLogger);
  // A record joins its transaction: one written in a transaction that rolled back is gone.
  const records = () => written.filter((r) => r.tx !== undefined && store.didCommit(r.tx)).map((r) => r.event);
  return { store, recorder, records, written, failAudit: () => (failNext = true) };
}

describe('RefusalRecorder over its repository', () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness();
  });

  it('records the first refusal at once, counts repeats within the interval, records them with the next one after it', async () => {
    await h.recorder.record(refusal(), at(0));
    await h.recorder.record(refusal({ remoteAddress: '10.0.0.8' }), at(1_000));
    await h.recorder.record(refusal({ remoteAddress: '10.0.0.7' }), at(30_000));
    expect(h.records().map((e) => e.details)).toEqual([
      expect.objectContaining({ count: 1, firstAt: at(0).toISOString(), remoteAddresses: ['10.0.0.7'] }),
    ]);
    await h.recorder.record(refusal({ remoteAddress: '10.0.0.9' }), at(REFUSAL_RECORD_INTERVAL_MS));
    expect(h.records().map((e) => e.details)).toEqual([
      expect.objectContaining({ count: 1 }),
      expect.objectContaining({
        count: 3,
        firstAt: at(1_000).toISOString(),
        lastAt: at(REFUSAL_RECORD_INTERVAL_MS).toISOString(),
        remoteAddresses: ['10.0.0.8', '10.0.0.7', '10.0.0.9'],
      }),
    ]);
    expect([...h.store.rows.values()][0]).toMatchObject({
      pendingCount: 0,
      lastRecordedAt: at(REFUSAL_RECORD_INTERVAL_MS),
    });
  });

  it('counts per identity and per reason: another certificate or another reason is recorded at once', async () => {
    await h.recorder.record(refusal(), at(0));
    await h.recorder.record(refusal({ fingerprintSha256: 'b'.repeat(64) }), at(1));
    await h.recorder.record(refusal({ reason: 'This client certificate expired.' }), at(2));
    await h.recorder.record(refusal({ action: 'silo.certificate.renewal.refused' }), at(3));
    await h.recorder.record(refusal(), at(4));
    expect(h.records()).toHaveLength(4);
    expect(h.store.rows.size).toBe(4);
    expect([...h.store.rows.values()].map((r) => r.pendingCount)).toEqual([1, 0, 0, 0]);
  });

  it('flushes counts whose interval ended (all of them at shutdown), each exactly once', async () => {
    await h.recorder.record(refusal(), at(0));
    await h.recorder.record(refusal(), at(10));
    await h.recorder.record(refusal({ fingerprintSha256: 'b'.repeat(64) }), at(20));
    await h.recorder.record(refusal({ fingerprintSha256: 'b'.repeat(64) }), at(30));
    expect(await h.recorder.flush({}, at(REFUSAL_RECORD_INTERVAL_MS - 1))).toBe(0);
    expect(await h.recorder.flush({}, at(REFUSAL_RECORD_INTERVAL_MS))).toBe(1);
    expect(await h.recorder.flush({ all: true }, at(REFUSAL_RECORD_INTERVAL_MS + 5))).toBe(1);
    expect(await h.recorder.flush({ all: true }, at(REFUSAL_RECORD_INTERVAL_MS + 6))).toBe(0);
    expect(h.records().map((e) => (e.details as { count: number }).count)).toEqual([1, 1, 1, 1]);
    // The actor, subject and kind of the latest refusal are the record's.
    expect(h.records().every((e) => e.action === 'silo.identity.refused')).toBe(true);
  });

  it('keeps at most REFUSAL_MAX_ADDRESSES distinct addresses while counting every refusal', async () => {
    await h.recorder.record(refusal(), at(0));
    for (let i = 0; i < REFUSAL_MAX_ADDRESSES + 4; i++) {
      await h.recorder.record(refusal({ remoteAddress: `10.0.1.${i % (REFUSAL_MAX_ADDRESSES + 2)}` }), at(1 + i));
    }
    await h.recorder.flush({ all: true }, at(100));
    const details = h.records()[1]!.details as { count: number; remoteAddresses: string[] };
    expect(details.count).toBe(REFUSAL_MAX_ADDRESSES + 4);
    expect(details.remoteAddresses).toHaveLength(REFUSAL_MAX_ADDRESSES);
  });

  it('loses no count when the record cannot be written: the count stays pending for the next flush', async () => {
    await h.recorder.record(refusal(), at(0));
    await h.recorder.record(refusal(), at(1));
    h.failAudit();
    await expect(h.recorder.flush({ all: true }, at(2))).rejects.toThrow('the database went away');
    expect([...h.store.rows.values()][0]!.pendingCount).toBe(1);
    expect(await h.recorder.flush({ all: true }, at(3))).toBe(1);
    expect(h.records().map((e) => (e.details as { count: number }).count)).toEqual([1, 1]);
  });

  it('of refusals arriving together, the first is recorded and the others counted (the row is locked)', async () => {
    await Promise.all(Array.from({ length: 5 }, (_, i) => h.recorder.record(refusal(), at(i))));
    expect(h.records()).toHaveLength(1);
    expect([...h.store.rows.values()][0]!.pendingCount).toBe(4);
  });
});
