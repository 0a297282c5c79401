import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { HubPkiEntity } from './hub-pki.entity';

const CA_ROW = 'silo-ca';
const SERVER_ROW = 'server';
/** Two hub replicas booting together must not both create a CA. */
const PKI_LOCK = 7_262_637_361_002;

/** A stored key pair: the certificate, its private key encrypted under TESSERA_CA_KEY_PASSPHRASE, and what to know of it. */
export interface StoredKeyPair {
  readonly certificatePem: string;
  readonly privateKeyEncryptedPem: string;
  readonly fingerprintSha256: string;
  readonly notAfter: Date;
}

/** The PKI rows inside the transaction that holds the PKI lock. */
export interface PkiUnitOfWork {
  ca(): Promise<HubPkiEntity | null>;
  /** Stores a CA the hub created; refused (primary key) when one is stored already. */
  insertCa(ca: StoredKeyPair): Promise<void>;
  /** Stores the CA an operator provided, over any CA stored before. */
  replaceCa(ca: StoredKeyPair): Promise<void>;
  server(): Promise<HubPkiEntity | null>;
  /** Stores the hub's own TLS certificate, over the one stored before. */
  saveServer(server: StoredKeyPair): Promise<void>;
  /** Forgets the hub's TLS certificate (signed by a CA that is no longer the hub's). */
  dropServer(): Promise<void>;
}

/**
 * The PKI's data access: the only code of pki/ that runs SQL or uses TypeORM (`hub_pki`: one row for the silo CA,
 * one for the hub's TLS certificate). HubPkiService keeps the rules; its unit spec replaces this with a double
 * (in-memory-pki.test-util.ts).
 */
@Injectable()
export class PkiRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** Every stored row, read without a lock (to start decrypting their keys before waiting for it). */
  stored(): Promise<HubPkiEntity[]> {
    return this.db.getRepository(HubPkiEntity).find();
  }

  /**
   * Runs `work` in one transaction that first takes the PKI's advisory lock (held until it ends), so two replicas
   * booting together decide one after the other; it commits when `work` resolves.
   */
  underPkiLock<T>(work: (tx: PkiUnitOfWork) => Promise<T>): Promise<T> {
    return this.db.transaction(async (manager) => {
      await manager.query('SELECT pg_advisory_xact_lock($1)', [PKI_LOCK]);
      return work(pkiRows(manager));
    });
  }
}

function pkiRows(manager: EntityManager): PkiUnitOfWork {
  const rows = manager.getRepository(HubPkiEntity);
  return {
    ca: () => rows.findOne({ where: { name: CA_ROW } }),
    insertCa: async (ca) => {
      await rows.insert({ name: CA_ROW, ...ca });
    },
    replaceCa: async (ca) => {
      await rows.save({ name: CA_ROW, ...ca });
    },
    server: () => rows.findOne({ where: { name: SERVER_ROW } }),
    saveServer: async (server) => {
      await rows.save({ name: SERVER_ROW, ...server });
    },
    dropServer: async () => {
      await rows.delete({ name: SERVER_ROW });
    },
  };
}
