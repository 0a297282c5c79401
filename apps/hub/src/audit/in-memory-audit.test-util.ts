import { AsyncLocalStorage } from 'node:async_hooks';
import { appendRecord, type AuditRecord, type Checkpoint } from '@tessera/audit';
import type { PinoLogger } from 'nestjs-pino';
import type { HubConfig } from '../config/config.schema';
import { RowLocks, UniqueViolation } from '../silos/in-memory-silos.test-util';
import type { AuditCheckpointRepository, CheckpointSigning } from './audit-checkpoint.repository';
import { AuditCheckpointService } from './audit-checkpoint.service';
import { normalizeAuditEvent } from './audit-event.util';
import { AuditExportService } from './audit-export.service';
import { AuditLogService, type AuditEventFilter } from './audit-log.service';
import type { AuditSigningKeyRepository, NewSigningKey, SigningKeyCreation } from './audit-signing-key.repository';
import { AuditSigningKeyEntity } from './audit-signing-key.entity';
import { AuditSigningKeyService } from './audit-signing-key.service';
import { AuditVerificationService } from './audit-verification.service';
import type { AuditEvent } from './audit-trail';
import type {
  AuditRepository,
  ChainLink,
  EndedStudy,
  EventPageQuery,
  IssuedCharge,
  LaterRecord,
  NamedId,
  RoundRow,
  SettledParticipation,
} from './audit.repository';

/** What the audit services read through (every method of the three repositories). */
export type ChainPort = Pick<AuditRepository, keyof AuditRepository>;
export type CheckpointPort = Pick<AuditCheckpointRepository, keyof AuditCheckpointRepository>;
export type SigningKeyPort = Pick<AuditSigningKeyRepository, keyof AuditSigningKeyRepository>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A row of `audit_records`: the record as hashed, and the filter columns DatabaseAuditTrail copies beside it. */
interface StoredRecord {
  record: AuditRecord;
  timeAt: Date;
  studyId: string | null;
  siloId: string | null;
}

type StoredCheckpoint = Checkpoint & { count: number };

interface Transaction {
  id: number;
  records: StoredRecord[];
  checkpoints: StoredCheckpoint[];
  keys: AuditSigningKeyEntity[];
  /** Advisory locks this transaction holds (they are re-entrant within it, as in PostgreSQL). */
  held: Set<string>;
  releases: (() => void)[];
}

/** Lets the event loop run other transactions between two statements, as a database round trip would. */
const roundTrip = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * `audit_records`, `audit_checkpoints` and `audit_signing_keys` in memory, behind the three audit repositories
 * (`chain`, `checkpointStore`, `keyStore`), with: the tables' primary keys (a record's or checkpoint's seq, a key's
 * id) checked at commit; the two advisory locks (the chain's, the signing key's) held until the transaction ends,
 * queueing the others FIFO; commit only when the work resolves; and DatabaseAuditTrail.inTransaction's joining: a
 * transaction opened while one is running joins it. Every statement yields to the event loop first, so two callers
 * interleave as two connections would. The rows of the state tables a bundle's recorded state is read from, and the
 * current names of accounts and silos, are plain arrays a spec fills.
 *
 * Differences from PostgreSQL a spec must not rely on: `q` matches JSON.stringify's text of the details (jsonb's
 * text has a space after each colon and comma); reads outside a transaction see what committed, not a snapshot.
 */
export class InMemoryAudit {
  private records: StoredRecord[] = [];
  private checkpoints: StoredCheckpoint[] = [];
  private keys: AuditSigningKeyEntity[] = [];
  private readonly locks = new RowLocks();
  private readonly context = new AsyncLocalStorage<Transaction>();
  private transactions = 0;
  private lastCreated = 0;
  /** Advisory locks taken, in order, by transaction id: `chain` or `signing-key`. */
  readonly lockLog: { tx: number; lock: string }[] = [];

  readonly users: NamedId[] = [];
  readonly silos: NamedId[] = [];
  readonly state: {
    participations: SettledParticipation[];
    charges: IssuedCharge[];
    rounds: RoundRow[];
    ended: EndedStudy[];
  } = { participations: [], charges: [], rounds: [], ended: [] };

  /** Appends a record as DatabaseAuditTrail.append does: under the chain lock, in the open transaction or its own. */
  append(event: AuditEvent, time: Date = new Date()): Promise<AuditRecord> {
    return this.run((tx) => this.appendIn(tx, event, time));
  }

  /** Runs `work` in the open transaction if there is one (it joins), else in a new one that commits on success. */
  async run<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    const open = this.context.getStore();
    if (open) return work(open);
    const tx: Transaction = {
      id: ++this.transactions,
      records: [],
      checkpoints: [],
      keys: [],
      held: new Set(),
      releases: [],
    };
    try {
      const result = await this.context.run(tx, () => work(tx));
      this.commit(tx);
      return result;
    } finally {
      for (const release of tx.releases) release();
    }
  }

  /** Every committed record, in seq order. */
  get chainRecords(): AuditRecord[] {
    return this.records.map((r) => r.record);
  }

  get storedCheckpoints(): Checkpoint[] {
    return this.checkpoints.map((c) => ({ ...c }));
  }

  get storedKeys(): AuditSigningKeyEntity[] {
    return [...this.keys];
  }

  /** Changes a stored record behind the hub's back (its hash left as it was), as a superuser could. */
  tamper(seq: number, details: AuditRecord['details']): void {
    const row = this.records.find((r) => r.record.seq === seq);
    if (!row) throw new Error(`no record ${seq}`);
    row.record = { ...row.record, details };
  }

  /** Removes the records from `seq` on, as a superuser could. */
  cutFrom(seq: number): void {
    this.records = this.records.filter((r) => r.record.seq < seq);
  }

  /** Stores a checkpoint as it is (a key the hub never had, a forged signature). */
  plantCheckpoint(checkpoint: Checkpoint): void {
    this.checkpoints = [...this.checkpoints, { ...checkpoint, count: checkpoint.count ?? checkpoint.seq }].sort(
      (a, b) => a.seq - b.seq,
    );
  }

  readonly chain: ChainPort = {
    headSeq: async () => {
      await roundTrip();
      return this.records.at(-1)?.record.seq ?? 0;
    },
    linkAt: async (seq) => {
      await roundTrip();
      const row = this.records.find((r) => r.record.seq === seq);
      return row ? { seq, hash: row.record.hash } : null;
    },
    recordExists: async (seq) => {
      await roundTrip();
      return this.records.some((r) => r.record.seq === seq);
    },
    segment: async (fromSeq, toSeq) => {
      await roundTrip();
      return this.records.filter((r) => r.record.seq >= fromSeq && r.record.seq <= toSeq).map((r) => r.record);
    },
    batchAfter: async (afterSeq, upTo, take) => {
      await roundTrip();
      return this.records
        .filter((r) => r.record.seq > afterSeq && r.record.seq <= upTo)
        .slice(0, take)
        .map((r) => r.record);
    },
    firstStudySeq: async (studyId, upTo) => {
      await roundTrip();
      return this.records.find((r) => r.studyId === studyId && r.record.seq <= upTo)?.record.seq ?? null;
    },
    firstLaterRecord: async (headSeq, neutralActions, studyId): Promise<LaterRecord | undefined> => {
      await roundTrip();
      const later = this.records.find(
        (r) =>
          (studyId === undefined || r.studyId === studyId) &&
          r.record.seq > headSeq &&
          !neutralActions.includes(r.record.action),
      );
      return later ? { seq: later.record.seq, action: later.record.action } : undefined;
    },
    eventPage: async (filter: AuditEventFilter, page: EventPageQuery) => {
      await roundTrip();
      const matching = this.records.filter((r) => this.matches(r, filter));
      const ordered = page.order === 'asc' ? matching : [...matching].reverse();
      const cursor = page.cursor;
      const afterCursor =
        cursor === undefined
          ? ordered
          : ordered.filter((r) => (page.order === 'asc' ? r.record.seq > cursor : r.record.seq < cursor));
      return afterCursor.slice(0, page.take).map((r) => r.record);
    },
    usernames: async (ids) => {
      await roundTrip();
      return this.users.filter((u) => ids.includes(u.id));
    },
    siloNames: async (ids) => {
      await roundTrip();
      return this.silos.filter((s) => ids.includes(s.id));
    },
    settledParticipations: async (studyId) => {
      await roundTrip();
      return this.state.participations.filter(
        (p) => ['uploaded', 'evaluated', 'failed'].includes(p.status) && inStudy(p.studyId, studyId),
      );
    },
    issuedCharges: async (studyId) => {
      await roundTrip();
      return this.state.charges.filter((c) => inStudy(c.studyId, studyId));
    },
    rounds: async (studyId) => {
      await roundTrip();
      return this.state.rounds.filter((r) => inStudy(r.studyId, studyId));
    },
    endedStudies: async (studyId) => {
      await roundTrip();
      return this.state.ended.filter((s) => inStudy(s.studyId, studyId));
    },
  };

  readonly checkpointStore: CheckpointPort = {
    inTransaction: <T>(work: (tx: CheckpointSigning) => Promise<T>) =>
      this.run((tx) =>
        work({
          lockChain: () => this.lock(tx, 'chain'),
          head: async (): Promise<ChainLink | null> => {
            await roundTrip();
            const head = this.visibleRecords(tx).at(-1);
            return head ? { seq: head.record.seq, hash: head.record.hash } : null;
          },
          latest: async () => {
            await roundTrip();
            const latest = [...this.checkpoints, ...tx.checkpoints].sort((a, b) => b.seq - a.seq)[0];
            return latest ? { ...latest } : null;
          },
          insert: async (checkpoint) => {
            await roundTrip();
            tx.checkpoints.push({ ...checkpoint });
          },
        }),
      ),
    after: async (afterSeq, limit) => {
      await roundTrip();
      return this.checkpoints
        .filter((c) => c.seq > afterSeq)
        .slice(0, limit)
        .map((c) => ({ ...c }));
    },
    between: async (fromSeq, toSeq, keyId) => {
      await roundTrip();
      return this.checkpoints.filter((c) => c.seq >= fromSeq && c.seq <= toSeq && c.keyId === keyId);
    },
    lastBefore: async (seq, keyId) => {
      await roundTrip();
      return this.checkpoints.filter((c) => c.seq < seq && c.keyId === keyId).at(-1) ?? null;
    },
  };

  readonly keyStore: SigningKeyPort = {
    inTransaction: <T>(work: (tx: SigningKeyCreation) => Promise<T>) =>
      this.run((tx) =>
        work({
          lockKeys: () => this.lock(tx, 'signing-key'),
          first: async () => {
            await roundTrip();
            return [...this.keys, ...tx.keys][0] ?? null;
          },
          insert: async (key: NewSigningKey) => {
            await roundTrip();
            const row = Object.assign(new AuditSigningKeyEntity(), key, { createdAt: this.created() });
            tx.keys.push(row);
            return row;
          },
          record: async (event) => {
            await this.appendIn(tx, event, new Date());
          },
        }),
      ),
    all: async () => {
      await roundTrip();
      return [...this.keys];
    },
  };

  private async lock(tx: Transaction, name: string): Promise<void> {
    await roundTrip();
    if (tx.held.has(name)) return;
    tx.releases.push(await this.locks.acquire(name));
    tx.held.add(name);
    this.lockLog.push({ tx: tx.id, lock: name });
  }

  private async appendIn(tx: Transaction, event: AuditEvent, time: Date): Promise<AuditRecord> {
    const normalized = normalizeAuditEvent(event);
    await this.lock(tx, 'chain');
    await roundTrip();
    const head = this.visibleRecords(tx).at(-1)?.record;
    const record = appendRecord(head ? { seq: head.seq, hash: head.hash } : null, {
      time: time.toISOString(),
      ...normalized,
    });
    tx.records.push({
      record,
      timeAt: time,
      studyId: uuidOrNull(record.subject.studyId),
      siloId: uuidOrNull(record.subject.siloId),
    });
    return record;
  }

  private visibleRecords(tx: Transaction): StoredRecord[] {
    return [...this.records, ...tx.records];
  }

  /** The primary keys, checked as the commit would meet them; then the transaction's rows become visible. */
  private commit(tx: Transaction): void {
    const records = [...this.records, ...tx.records];
    const checkpoints = [...this.checkpoints, ...tx.checkpoints].sort((a, b) => a.seq - b.seq);
    const keys = [...this.keys, ...tx.keys];
    if (new Set(records.map((r) => r.record.seq)).size !== records.length) {
      throw new UniqueViolation('audit_records_pkey');
    }
    if (new Set(checkpoints.map((c) => c.seq)).size !== checkpoints.length) {
      throw new UniqueViolation('audit_checkpoints_pkey');
    }
    if (new Set(keys.map((k) => k.keyId)).size !== keys.length) throw new UniqueViolation('audit_signing_keys_pkey');
    this.records = records.sort((a, b) => a.record.seq - b.record.seq);
    this.checkpoints = checkpoints;
    this.keys = keys;
  }

  private matches(r: StoredRecord, f: AuditEventFilter): boolean {
    const { record } = r;
    if (f.from && r.timeAt < f.from) return false;
    if (f.to && r.timeAt >= f.to) return false;
    if (f.actor !== undefined) {
      const actor = f.actor;
      const named =
        record.actor.id === actor ||
        record.actor.name === actor ||
        (record.actor.type === 'user' &&
          this.users.some((u) => u.id === record.actor.id && u.name.toLowerCase() === actor.toLowerCase())) ||
        (record.actor.type === 'silo' && this.silos.some((s) => s.id === record.actor.id && s.name === actor));
      if (!named) return false;
    }
    if (f.action !== undefined && !record.action.startsWith(f.action)) return false;
    if (f.studyId !== undefined && r.studyId !== f.studyId) return false;
    if (f.siloId !== undefined && r.siloId !== f.siloId) return false;
    if (f.upTo !== undefined && record.seq > f.upTo) return false;
    if (f.q !== undefined) {
      const q = f.q.toLowerCase();
      if (!record.action.toLowerCase().includes(q) && !JSON.stringify(record.details).toLowerCase().includes(q)) {
        return false;
      }
    }
    return true;
  }

  /** A strictly increasing `created_at`, so "oldest first" is well defined within one millisecond. */
  private created(): Date {
    this.lastCreated = Math.max(this.lastCreated + 1, Date.now());
    return new Date(this.lastCreated);
  }
}

function inStudy(rowStudy: string, studyId: string | undefined): boolean {
  return studyId === undefined || rowStudy === studyId;
}

function uuidOrNull(value: string | undefined): string | null {
  return value !== undefined && UUID.test(value) ? value : null;
}

/** The five audit services over one in-memory store, as one hub replica holds them; a second call makes a replica. */
export function auditServicesOver(store: InMemoryAudit, passphrase = 'test passphrase of the hub CA') {
  const config = { caKeyPassphrase: passphrase, dataDir: '/nonexistent', auditCheckpointSeconds: 3600 } as HubConfig;
  const logger = { info: () => undefined, error: () => undefined, debug: () => undefined } as unknown as PinoLogger;
  const keys = new AuditSigningKeyService(store.keyStore as AuditSigningKeyRepository, config);
  const checkpoints = new AuditCheckpointService(
    store.checkpointStore as AuditCheckpointRepository,
    config,
    keys,
    logger,
  );
  const chain = store.chain as AuditRepository;
  const stored = store.checkpointStore as AuditCheckpointRepository;
  return {
    keys,
    checkpoints,
    log: new AuditLogService(chain),
    verification: new AuditVerificationService(chain, stored, keys),
    exporter: new AuditExportService(chain, stored, checkpoints, keys),
  };
}
