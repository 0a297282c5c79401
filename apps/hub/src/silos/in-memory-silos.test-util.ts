import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { EnrollmentTokenEntity } from './enrollment-token.entity';
import { SiloCertificateEntity } from './silo-certificate.entity';
import { SiloEntity } from './silo.entity';
import type { SilosRepository, SilosUnitOfWork, SiloViewRows } from './silos.repository';

/** What the silo services read and write through (presence's write has its own spec, silo-health.int-spec.ts). */
export type SilosPort = Pick<
  SilosRepository,
  'inTransaction' | 'findSilo' | 'listSilos' | 'certificatesOf' | 'certificateByFingerprint' | 'viewRows'
>;

/** A unique constraint's refusal, as the driver would raise it. */
export class UniqueViolation extends Error {
  constructor(constraint: string) {
    super(`duplicate key value violates unique constraint "${constraint}"`);
  }
}

/** FIFO row locks held until the transaction that took them ends (PostgreSQL's FOR UPDATE). */
export class RowLocks {
  private readonly tails = new Map<string, Promise<void>>();

  async acquire(key: string): Promise<() => void> {
    const before = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = before.then(() => mine);
    this.tails.set(key, tail);
    await before;
    return () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }
}

interface Tables {
  silos: Map<string, SiloEntity>;
  tokens: Map<string, EnrollmentTokenEntity>;
  certs: Map<string, SiloCertificateEntity>;
}

const copyOf = <T extends object>(row: T): T =>
  Object.assign(Object.create(Object.getPrototypeOf(row) as object) as T, row);

/**
 * `silos`, `enrollment_tokens` and `silo_certificates` in memory, with the real tables' unique constraints (silo
 * name, token hash, certificate fingerprint and serial), row locks that queue transactions until the holder ends,
 * READ COMMITTED reads (a statement sees what committed before it, plus its own transaction's writes), and commits
 * only when the work resolves. `openTransaction()` says which transaction the running code is inside, as
 * AmbientTransactions does for the audit trail, and `didCommit` whether a record written there was kept.
 */
export class InMemorySilos implements SilosPort {
  private committed: Tables = { silos: new Map(), tokens: new Map(), certs: new Map() };
  private readonly locks = new RowLocks();
  private readonly context = new AsyncLocalStorage<number>();
  private transactions = 0;
  /** A strictly increasing clock for `createdAt`, so "issued no later than" is well defined within one millisecond. */
  private lastCreated = 0;
  /** Every row lock taken, in order: `silo:<id>` or `token:<id>`. */
  readonly lockLog: string[] = [];
  private readonly committedIds = new Set<number>();

  openTransaction(): number | undefined {
    return this.context.getStore();
  }

  /** Whether the transaction with this id committed (a record written in it was kept). */
  didCommit(transaction: number): boolean {
    return this.committedIds.has(transaction);
  }

  async inTransaction<T>(work: (tx: SilosUnitOfWork) => Promise<T>): Promise<T> {
    const id = ++this.transactions;
    const writes: Tables = { silos: new Map(), tokens: new Map(), certs: new Map() };
    const releases: (() => void)[] = [];
    try {
      const result = await this.context.run(id, () => work(this.unitOfWork(writes, releases)));
      const next = this.merged(writes);
      this.checkUnique(next);
      this.committed = next;
      this.committedIds.add(id);
      return result;
    } finally {
      for (const release of releases) release();
    }
  }

  findSilo(siloId: string): Promise<SiloEntity | null> {
    return Promise.resolve(this.read(this.committed.silos, siloId));
  }

  listSilos(): Promise<SiloEntity[]> {
    return Promise.resolve([...this.committed.silos.values()].sort(byCreated).map(copyOf));
  }

  certificatesOf(siloId: string): Promise<SiloCertificateEntity[]> {
    const rows = [...this.committed.certs.values()].filter((c) => c.siloId === siloId);
    return Promise.resolve(rows.sort(byCreated).reverse().map(copyOf));
  }

  certificateByFingerprint(fingerprintSha256: string): Promise<SiloCertificateEntity | null> {
    const found = [...this.committed.certs.values()].find((c) => c.fingerprintSha256 === fingerprintSha256);
    return Promise.resolve(found ? copyOf(found) : null);
  }

  viewRows(siloIds: string[]): Promise<SiloViewRows> {
    const newestFirst = <T extends { siloId: string; createdAt: Date }>(rows: Iterable<T>) =>
      [...rows]
        .filter((r) => siloIds.includes(r.siloId))
        .sort(byCreated)
        .reverse()
        .map(copyOf);
    const certs = newestFirst(this.committed.certs.values());
    return Promise.resolve({
      active: certs.filter((c) => c.status === 'active'),
      latest: certs,
      pendingTokens: newestFirst(this.committed.tokens.values()).filter((t) => !t.usedAt && !t.withdrawnAt),
    });
  }

  /** Given state, committed outside any transaction. */
  seedSilo(fields: Partial<SiloEntity> & Pick<SiloEntity, 'name'>): SiloEntity {
    const silo = this.newSilo({ contact: 'it@example.org', status: 'registered', ...fields });
    this.committed.silos.set(silo.id, silo);
    return copyOf(silo);
  }

  seedToken(fields: Pick<EnrollmentTokenEntity, 'siloId' | 'tokenHash' | 'expiresAt'>): EnrollmentTokenEntity {
    const token = this.newToken(fields);
    this.committed.tokens.set(token.id, token);
    return copyOf(token);
  }

  /** The committed rows, for a test's assertions. */
  get silos(): SiloEntity[] {
    return [...this.committed.silos.values()].map(copyOf);
  }

  get tokens(): EnrollmentTokenEntity[] {
    return [...this.committed.tokens.values()].sort(byCreated).map(copyOf);
  }

  get certificates(): SiloCertificateEntity[] {
    return [...this.committed.certs.values()].sort(byCreated).map(copyOf);
  }

  private unitOfWork(writes: Tables, releases: (() => void)[]): SilosUnitOfWork {
    const view = (): Tables => this.merged(writes);
    const lock = async (key: string) => {
      releases.push(await this.locks.acquire(key));
      this.lockLog.push(key);
    };
    const certsWhere = (keep: (c: SiloCertificateEntity) => boolean) =>
      [...view().certs.values()].filter(keep).sort(byCreated).map(copyOf);
    const updateCert = (serial: string, change: Partial<SiloCertificateEntity>) => {
      const current = view().certs.get(serial);
      if (current) writes.certs.set(serial, Object.assign(copyOf(current), change));
    };
    return {
      lockSilo: async (siloId) => {
        await lock(`silo:${siloId}`);
        return this.read(view().silos, siloId);
      },
      findSiloByName: (name) => {
        const found = [...view().silos.values()].find((s) => s.name === name);
        return Promise.resolve(found ? copyOf(found) : null);
      },
      insertSilo: (fields) => {
        const silo = this.newSilo(fields);
        writes.silos.set(silo.id, silo);
        this.checkUnique(view());
        return Promise.resolve(copyOf(silo));
      },
      updateSilo: (siloId, change) => {
        const current = view().silos.get(siloId);
        if (current) writes.silos.set(siloId, Object.assign(copyOf(current), change, { updatedAt: new Date() }));
        return Promise.resolve();
      },
      lockToken: async (tokenHash) => {
        const found = [...view().tokens.values()].find((t) => t.tokenHash === tokenHash);
        if (!found) return null;
        await lock(`token:${found.id}`);
        return this.read(view().tokens, found.id);
      },
      withdrawOpenTokens: (siloId, at) => {
        for (const t of view().tokens.values()) {
          if (t.siloId === siloId && !t.usedAt && !t.withdrawnAt) {
            writes.tokens.set(t.id, Object.assign(copyOf(t), { withdrawnAt: at }));
          }
        }
        return Promise.resolve();
      },
      insertToken: (fields) => {
        const token = this.newToken(fields);
        writes.tokens.set(token.id, token);
        this.checkUnique(view());
        return Promise.resolve();
      },
      markTokenUsed: (tokenId, at) => {
        const current = view().tokens.get(tokenId);
        if (current) writes.tokens.set(tokenId, Object.assign(copyOf(current), { usedAt: at }));
        return Promise.resolve();
      },
      certificate: (serial) => Promise.resolve(this.read(view().certs, serial)),
      certificateOf: (siloId, serial) => {
        const found = view().certs.get(serial);
        return Promise.resolve(found && found.siloId === siloId ? copyOf(found) : null);
      },
      certificatesOf: (siloId) => Promise.resolve(certsWhere((c) => c.siloId === siloId)),
      unrevokedCertificatesOf: (siloId) =>
        Promise.resolve(certsWhere((c) => c.siloId === siloId && c.status !== 'revoked')),
      hasActiveCertificate: (siloId) =>
        Promise.resolve(certsWhere((c) => c.siloId === siloId && c.status === 'active').length > 0),
      lineage: (lineageId) => Promise.resolve(certsWhere((c) => c.lineageId === lineageId)),
      insertCertificate: (fields) => {
        if (view().certs.has(fields.serial)) throw new UniqueViolation('silo_certificates_pkey');
        const cert = Object.assign(new SiloCertificateEntity(), {
          firstUsedAt: null,
          revokedAt: null,
          revocationReason: null,
          createdAt: this.created(),
          ...fields,
        });
        writes.certs.set(cert.serial, cert);
        this.checkUnique(view());
        return Promise.resolve();
      },
      revokeCertificate: (serial, at, reason) => {
        updateCert(serial, { status: 'revoked', revokedAt: at, revocationReason: reason });
        return Promise.resolve();
      },
      supersede: (serials) => {
        for (const serial of serials) updateCert(serial, { status: 'superseded' });
        return Promise.resolve();
      },
      markFirstUse: (serial, at) => {
        updateCert(serial, { firstUsedAt: at });
        return Promise.resolve();
      },
      supersedeOlderOfLineage: (used) => {
        for (const c of certsWhere(
          (c) =>
            c.lineageId === used.lineageId &&
            c.status === 'active' &&
            c.serial !== used.serial &&
            c.createdAt.getTime() <= used.createdAt.getTime(),
        )) {
          updateCert(c.serial, { status: 'superseded' });
        }
        return Promise.resolve();
      },
    };
  }

  private merged(writes: Tables): Tables {
    return {
      silos: new Map([...this.committed.silos, ...writes.silos]),
      tokens: new Map([...this.committed.tokens, ...writes.tokens]),
      certs: new Map([...this.committed.certs, ...writes.certs]),
    };
  }

  private checkUnique(tables: Tables): void {
    const distinct = <T>(rows: Iterable<T>, key: (row: T) => string, constraint: string) => {
      const seen = new Set<string>();
      for (const row of rows) {
        if (seen.has(key(row))) throw new UniqueViolation(constraint);
        seen.add(key(row));
      }
    };
    distinct(tables.silos.values(), (s) => s.name, 'silos_name_unique');
    distinct(tables.tokens.values(), (t) => t.tokenHash, 'enrollment_tokens_hash_unique');
    distinct(tables.certs.values(), (c) => c.fingerprintSha256, 'silo_certificates_fingerprint_unique');
  }

  private read<T extends object>(rows: Map<string, T>, key: string): T | null {
    const row = rows.get(key);
    return row ? copyOf(row) : null;
  }

  private created(): Date {
    this.lastCreated = Math.max(this.lastCreated + 1, Date.now());
    return new Date(this.lastCreated);
  }

  private newSilo(fields: Partial<SiloEntity> & Pick<SiloEntity, 'name' | 'contact' | 'status'>): SiloEntity {
    return Object.assign(new SiloEntity(), {
      id: randomUUID(),
      suspendedReason: null,
      lastSeenAt: null,
      enrollLastSeenAt: null,
      agentVersion: null,
      agentPlatform: null,
      agentNode: null,
      createdAt: this.created(),
      updatedAt: new Date(),
      ...fields,
    });
  }

  private newToken(fields: Pick<EnrollmentTokenEntity, 'siloId' | 'tokenHash' | 'expiresAt'>): EnrollmentTokenEntity {
    return Object.assign(new EnrollmentTokenEntity(), {
      id: randomUUID(),
      usedAt: null,
      withdrawnAt: null,
      createdAt: this.created(),
      ...fields,
    });
  }
}

function byCreated(a: { createdAt: Date }, b: { createdAt: Date }): number {
  return a.createdAt.getTime() - b.createdAt.getTime();
}
