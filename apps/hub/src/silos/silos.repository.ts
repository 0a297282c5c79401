import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, In, IsNull, type EntityManager } from 'typeorm';
import { EnrollmentTokenEntity } from './enrollment-token.entity';
import { SiloCertificateEntity } from './silo-certificate.entity';
import { SiloEntity } from './silo.entity';

/** The fields of a certificate the hub has just issued. */
export type NewCertificate = Pick<
  SiloCertificateEntity,
  | 'serial'
  | 'siloId'
  | 'fingerprintSha256'
  | 'notBefore'
  | 'notAfter'
  | 'status'
  | 'issuedVia'
  | 'lineageId'
  | 'parentSerial'
  | 'publicKeySha256'
  | 'certificatePem'
>;

/** A silo's row with the fields a change may set. */
export type SiloChange = Partial<Pick<SiloEntity, 'status' | 'suspendedReason'>>;

/** The rows the administrators' list of silos is built from, each newest first. */
export interface SiloViewRows {
  /** The active certificates of the silos. */
  active: Pick<SiloCertificateEntity, 'siloId' | 'serial' | 'notAfter' | 'status' | 'createdAt'>[];
  /** Every certificate of the silos, in any status. */
  latest: Pick<
    SiloCertificateEntity,
    'siloId' | 'serial' | 'notAfter' | 'status' | 'createdAt' | 'revokedAt' | 'revocationReason'
  >[];
  /** Enrollment tokens neither used nor withdrawn. */
  pendingTokens: Pick<EnrollmentTokenEntity, 'siloId' | 'expiresAt' | 'createdAt'>[];
}

/** What the hub saw of a silo's agent since the last write (SiloPresence); a null time or software is left alone. */
export interface PresenceWrite {
  /** ISO times, ms precision. */
  lastSeenAt: string | null;
  enrollLastSeenAt: string | null;
  software: { version: string; platform: string; node: string } | null;
}

/**
 * One transaction of a change to silos, their enrollment tokens and certificates. The audit trail joins it on its
 * own (AmbientTransactions), so a service's record commits with the change it describes. Locks are row locks held
 * until the transaction ends.
 */
export interface SilosUnitOfWork {
  /** The silo's row, locked (FOR UPDATE): renewals, revocations, re-enrollments and first uses of one silo queue. */
  lockSilo(siloId: string): Promise<SiloEntity | null>;
  findSiloByName(name: string): Promise<SiloEntity | null>;
  insertSilo(silo: Pick<SiloEntity, 'name' | 'contact' | 'status'>): Promise<SiloEntity>;
  updateSilo(siloId: string, change: SiloChange): Promise<void>;

  /** The token with this hash, locked (FOR UPDATE): of two enrollments with one token, the second sees it used. */
  lockToken(tokenHash: string): Promise<EnrollmentTokenEntity | null>;
  /** Withdraws the silo's tokens that are neither used nor withdrawn. */
  withdrawOpenTokens(siloId: string, at: Date): Promise<void>;
  insertToken(token: Pick<EnrollmentTokenEntity, 'siloId' | 'tokenHash' | 'expiresAt'>): Promise<void>;
  markTokenUsed(tokenId: string, at: Date): Promise<void>;

  certificate(serial: string): Promise<SiloCertificateEntity | null>;
  /** The certificate with this serial if it is the silo's. */
  certificateOf(siloId: string, serial: string): Promise<SiloCertificateEntity | null>;
  /** Every certificate the silo holds or held, in every lineage and status. */
  certificatesOf(siloId: string): Promise<SiloCertificateEntity[]>;
  /** The silo's certificates that are active or superseded (not revoked). */
  unrevokedCertificatesOf(siloId: string): Promise<SiloCertificateEntity[]>;
  hasActiveCertificate(siloId: string): Promise<boolean>;
  /** Every certificate of a lineage: the enrollment certificate and its renewals. */
  lineage(lineageId: string): Promise<SiloCertificateEntity[]>;
  insertCertificate(certificate: NewCertificate): Promise<void>;
  revokeCertificate(serial: string, at: Date, reason: string): Promise<void>;
  supersede(serials: string[]): Promise<void>;
  markFirstUse(serial: string, at: Date): Promise<void>;
  /**
   * Supersedes the active certificates of `used`'s lineage issued no later than it (the first use of a renewal
   * retires the ones it replaces), in one statement.
   */
  supersedeOlderOfLineage(used: Pick<SiloCertificateEntity, 'lineageId' | 'serial' | 'createdAt'>): Promise<void>;
}

/**
 * The silos feature's data access for `silos`, `enrollment_tokens` and `silo_certificates`: with
 * SiloRefusalsRepository, the only code of silos/ that runs SQL or uses TypeORM. Services get entities and rows from
 * it and keep the rules (enrollment, renewal lineages, revocation); unit specs replace it with a double
 * (silo-certificates.service.spec.ts).
 */
@Injectable()
export class SilosRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** Runs `work` in one transaction: it commits when `work` resolves and rolls back when it throws. */
  inTransaction<T>(work: (tx: SilosUnitOfWork) => Promise<T>): Promise<T> {
    return this.db.transaction((manager) => work(unitOfWork(manager)));
  }

  findSilo(siloId: string): Promise<SiloEntity | null> {
    return this.db.getRepository(SiloEntity).findOne({ where: { id: siloId } });
  }

  /** Every silo, oldest first. */
  listSilos(): Promise<SiloEntity[]> {
    return this.db.getRepository(SiloEntity).find({ order: { createdAt: 'ASC' } });
  }

  /** The silo's certificates, newest first. */
  certificatesOf(siloId: string): Promise<SiloCertificateEntity[]> {
    return this.db.getRepository(SiloCertificateEntity).find({ where: { siloId }, order: { createdAt: 'DESC' } });
  }

  certificateByFingerprint(fingerprintSha256: string): Promise<SiloCertificateEntity | null> {
    return this.db.getRepository(SiloCertificateEntity).findOne({ where: { fingerprintSha256 } });
  }

  /** Three queries whatever the number of silos (the console polls the list). */
  async viewRows(siloIds: string[]): Promise<SiloViewRows> {
    const certs = this.db.getRepository(SiloCertificateEntity);
    const active = await certs.find({
      select: { siloId: true, serial: true, notAfter: true, status: true, createdAt: true },
      where: { siloId: In(siloIds), status: 'active' },
      order: { createdAt: 'DESC' },
    });
    const latest = await certs.find({
      select: {
        siloId: true,
        serial: true,
        notAfter: true,
        status: true,
        createdAt: true,
        revokedAt: true,
        revocationReason: true,
      },
      where: { siloId: In(siloIds) },
      order: { createdAt: 'DESC' },
    });
    const pendingTokens = await this.db.getRepository(EnrollmentTokenEntity).find({
      select: { siloId: true, expiresAt: true, createdAt: true },
      where: { siloId: In(siloIds), usedAt: IsNull(), withdrawnAt: IsNull() },
      order: { createdAt: 'DESC' },
    });
    return { active, latest, pendingTokens };
  }

  /**
   * Writes what was seen of a silo's agent. Times never move backwards (GREATEST): another replica may have written
   * a later one. A silo deleted meanwhile is simply not updated.
   */
  async writePresence(siloId: string, seen: PresenceWrite): Promise<void> {
    await this.db
      .getRepository(SiloEntity)
      .createQueryBuilder()
      .update()
      .set({
        ...(seen.lastSeenAt === null
          ? {}
          : { lastSeenAt: () => `GREATEST(COALESCE("last_seen_at", :silo::timestamptz), :silo::timestamptz)` }),
        ...(seen.enrollLastSeenAt === null
          ? {}
          : {
              enrollLastSeenAt: () =>
                `GREATEST(COALESCE("enroll_last_seen_at", :enroll::timestamptz), :enroll::timestamptz)`,
            }),
        ...(seen.software === null
          ? {}
          : {
              agentVersion: seen.software.version,
              agentPlatform: seen.software.platform,
              agentNode: seen.software.node,
            }),
      })
      .where('id = :siloId', { siloId, silo: seen.lastSeenAt, enroll: seen.enrollLastSeenAt })
      .execute();
  }
}

function unitOfWork(tx: EntityManager): SilosUnitOfWork {
  const silos = tx.getRepository(SiloEntity);
  const tokens = tx.getRepository(EnrollmentTokenEntity);
  const certs = tx.getRepository(SiloCertificateEntity);
  return {
    lockSilo: (siloId) => silos.findOne({ where: { id: siloId }, lock: { mode: 'pessimistic_write' } }),
    findSiloByName: (name) => silos.findOne({ where: { name } }),
    insertSilo: (silo) => silos.save(silos.create(silo)),
    updateSilo: async (siloId, change) => {
      await silos.update(siloId, change);
    },
    lockToken: (tokenHash) => tokens.findOne({ where: { tokenHash }, lock: { mode: 'pessimistic_write' } }),
    withdrawOpenTokens: async (siloId, at) => {
      await tokens.update({ siloId, usedAt: IsNull(), withdrawnAt: IsNull() }, { withdrawnAt: at });
    },
    insertToken: async (token) => {
      await tokens.insert(token);
    },
    markTokenUsed: async (tokenId, at) => {
      await tokens.update(tokenId, { usedAt: at });
    },
    certificate: (serial) => certs.findOneBy({ serial }),
    certificateOf: (siloId, serial) => certs.findOne({ where: { serial, siloId } }),
    certificatesOf: (siloId) => certs.find({ where: { siloId } }),
    unrevokedCertificatesOf: (siloId) =>
      certs.find({
        where: [
          { siloId, status: 'active' },
          { siloId, status: 'superseded' },
        ],
      }),
    hasActiveCertificate: (siloId) => certs.exists({ where: { siloId, status: 'active' } }),
    lineage: (lineageId) => certs.find({ where: { lineageId } }),
    insertCertificate: async (certificate) => {
      await certs.insert(certificate);
    },
    revokeCertificate: async (serial, at, reason) => {
      await certs.update(serial, { status: 'revoked', revokedAt: at, revocationReason: reason });
    },
    supersede: async (serials) => {
      await certs.update({ serial: In(serials) }, { status: 'superseded' });
    },
    markFirstUse: async (serial, at) => {
      await certs.update(serial, { firstUsedAt: at });
    },
    supersedeOlderOfLineage: async (used) => {
      await tx
        .createQueryBuilder()
        .update(SiloCertificateEntity)
        .set({ status: 'superseded' })
        .where('lineage_id = :lineageId AND status = :active AND serial <> :serial AND created_at <= :createdAt', {
          lineageId: used.lineageId,
          active: 'active',
          serial: used.serial,
          createdAt: used.createdAt,
        })
        .execute();
    },
  };
}
