import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { AuditEvent } from './audit-trail';
import { AuditSigningKeyEntity } from './audit-signing-key.entity';
import { DatabaseAuditTrail } from './database-audit-trail';

/** Two hub replicas signing their first checkpoint together must not both create a key. */
const SIGNING_KEY_LOCK = 7_262_637_361_004;

/** A key row as inserted (the database sets its creation time). */
export type NewSigningKey = Pick<AuditSigningKeyEntity, 'keyId' | 'publicKeyPem' | 'privateKeyEncryptedPem'>;

/** The writes of the transaction that makes the hub's signing key. */
export interface SigningKeyCreation {
  /** The advisory lock SIGNING_KEY_LOCK, held until the transaction ends. */
  lockKeys(): Promise<void>;
  /** The oldest stored key, null before the first. */
  first(): Promise<AuditSigningKeyEntity | null>;
  insert(key: NewSigningKey): Promise<AuditSigningKeyEntity>;
  /** Appends an audit record in this transaction (DatabaseAuditTrail.appendInTransaction). */
  record(event: AuditEvent): Promise<void>;
}

/**
 * The data access of `audit_signing_keys`. The key is made in the audit trail's transaction (the enclosing hub
 * transaction if there is one, else its own), together with the record of its creation.
 */
@Injectable()
export class AuditSigningKeyRepository {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly trail: DatabaseAuditTrail,
  ) {}

  inTransaction<T>(work: (tx: SigningKeyCreation) => Promise<T>): Promise<T> {
    return this.trail.inTransaction((tx) => work(this.creationIn(tx)));
  }

  /** Every stored key, oldest first. */
  all(): Promise<AuditSigningKeyEntity[]> {
    return this.db.getRepository(AuditSigningKeyEntity).find({ order: { createdAt: 'ASC' } });
  }

  private creationIn(tx: EntityManager): SigningKeyCreation {
    const keys = tx.getRepository(AuditSigningKeyEntity);
    return {
      lockKeys: async () => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [SIGNING_KEY_LOCK]);
      },
      first: async () => {
        const [existing] = await keys.find({ order: { createdAt: 'ASC' }, take: 1 });
        return existing ?? null;
      },
      insert: async (key) => {
        const created = keys.create(key);
        await keys.insert(created);
        return created;
      },
      record: async (event) => {
        await this.trail.appendInTransaction(tx, event);
      },
    };
  }
}
