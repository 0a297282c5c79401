import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { CertificateGrant, CertificateView, EnrollmentBundle, SiloView } from '@tessera/protocol';
import { encodeEnrollmentBundle } from '@tessera/protocol';
import { issueSiloCertificate, parseCsr, PkiException } from '@tessera/pki';
import { DataSource, In, IsNull, type EntityManager } from 'typeorm';
import { ReadCache } from '../database/read-cache';
import { AuditTrail, type AuditActor } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import { HubPkiService } from '../pki/hub-pki.service';
import { EnrollmentTokenEntity } from './enrollment-token.entity';
import { RefusalRecorder } from './refusal-recorder.service';
import { renewalVerdict, type RenewalVerdict } from './renewal-policy.util';
import { SiloCertificateEntity } from './silo-certificate.entity';
import { SiloPresence, type AgentContact } from './silo-presence.service';
import { SiloEntity } from './silo.entity';
import type { SiloIdentity } from './silo-identity';

/** An enrollment token carries 256 random bits (the issue asks for at least 128). */
const TOKEN_BYTES = 32;

/** The API's views of silos are the shared wire types (libs/protocol api-views), so hub and console cannot drift. */
export type { CertificateView, SiloView };

export interface EnrollmentIssued {
  silo: SiloView;
  bundle: EnrollmentBundle;
  /** The bundle as one line of text, for `tessera-agent enroll --bundle`. */
  bundleText: string;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function certificateView(c: SiloCertificateEntity): CertificateView {
  return {
    serial: c.serial,
    fingerprintSha256: c.fingerprintSha256,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    status: c.status,
    issuedVia: c.issuedVia,
    firstUsedAt: c.firstUsedAt?.toISOString() ?? null,
    revokedAt: c.revokedAt?.toISOString() ?? null,
    revocationReason: c.revocationReason,
  };
}

/** Silo registration, one-time enrollment, certificate renewal and revocation, and identity checks. */
@Injectable()
export class SilosService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    private readonly pki: HubPkiService,
    private readonly audit: AuditTrail,
    private readonly refusals: RefusalRecorder,
    private readonly presence: SiloPresence,
    private readonly cache: ReadCache,
  ) {}

  async register(input: { name: string; contact: string }, actor: AuditActor): Promise<EnrollmentIssued> {
    const { silo, token, expiresAt } = await this.db.transaction(async (tx) => {
      const silos = tx.getRepository(SiloEntity);
      if (await silos.findOne({ where: { name: input.name } })) {
        throw new HubException(HubErrorCode.CONFLICT, `A silo named "${input.name}" already exists.`);
      }
      const created = await silos.save(
        silos.create({ name: input.name, contact: input.contact, status: 'registered' }),
      );
      const issued = await this.newToken(tx, created.id);
      // Every record below is written in its change's transaction (it joins it): both commit, or neither.
      await this.audit.record({
        actor,
        action: 'silo.registered',
        subject: { siloId: created.id },
        details: { name: created.name, tokenExpiresAt: issued.expiresAt.toISOString() },
      });
      return { silo: created, ...issued };
    });
    return this.enrollmentIssued(silo.id, token, expiresAt);
  }

  /**
   * A new enrollment for an existing silo (a new machine, a lost key, a suspected compromise): withdraws unused
   * tokens and revokes every certificate the silo holds, then issues a fresh token. Other silos are untouched.
   */
  async reEnroll(siloId: string, actor: AuditActor): Promise<EnrollmentIssued> {
    const { token, expiresAt } = await this.db.transaction(async (tx) => {
      const silo = await this.lockSilo(tx, siloId);
      const now = new Date();
      const revoked = await this.revokeAll(tx, silo.id, 're-enrollment', now);
      if (silo.status === 'enrolled') await tx.getRepository(SiloEntity).update(silo.id, { status: 'registered' });
      const issued = await this.newToken(tx, silo.id);
      await this.audit.record({
        actor,
        action: 'silo.re-enrollment.issued',
        subject: { siloId },
        details: { revokedSerials: revoked, tokenExpiresAt: issued.expiresAt.toISOString() },
      });
      return issued;
    });
    return this.enrollmentIssued(siloId, token, expiresAt);
  }

  /**
   * Trades a one-time token and a CSR for a certificate. The token burns only when the certificate is issued;
   * any refusal leaves everything as it was.
   */
  async enroll(
    token: string,
    csrPem: string,
    remoteAddress: string,
    contact?: AgentContact,
  ): Promise<CertificateGrant> {
    type Outcome = { refused: string; siloId?: string } | { grant: CertificateGrant; siloId: string };
    const result = await this.db.transaction(async (tx): Promise<Outcome> => {
      const tokens = tx.getRepository(EnrollmentTokenEntity);
      const row = await tokens.findOne({ where: { tokenHash: hashToken(token) }, lock: { mode: 'pessimistic_write' } });
      const now = new Date();
      const refusal = !row
        ? 'This enrollment token is unknown.'
        : row.usedAt
          ? 'This enrollment token was already used; ask the hub administrator for a new bundle.'
          : row.withdrawnAt
            ? 'This enrollment token was replaced by a newer one; use the newest bundle.'
            : row.expiresAt.getTime() <= now.getTime()
              ? 'This enrollment token has expired; ask the hub administrator for a new bundle.'
              : undefined;
      if (!row || refusal !== undefined) {
        return { refused: refusal ?? 'This enrollment token is unknown.', ...(row ? { siloId: row.siloId } : {}) };
      }
      const silo = await this.lockSilo(tx, row.siloId);
      if (silo.status === 'suspended') {
        throw new HubException(
          HubErrorCode.SILO_SUSPENDED,
          'This silo is suspended; the hub administrator must resume it.',
        );
      }
      const grant = await this.issue(tx, silo, csrPem, { via: 'enrollment' }, now);
      await tokens.update(row.id, { usedAt: now });
      await tx.getRepository(SiloEntity).update(silo.id, { status: 'enrolled' });
      await this.audit.record({
        actor: { type: 'silo', id: silo.id },
        action: 'silo.enrolled',
        subject: { siloId: silo.id, certificateSerial: grant.serial },
        details: { notAfter: grant.notAfter, remoteAddress },
      });
      return { grant, siloId: silo.id };
    });
    // A request with this silo's token (used, refused or not) is its agent on the enrollment listener.
    if (contact && result.siloId) this.presence.opened(result.siloId, 'enroll', contact);
    if ('refused' in result) {
      await this.audit.record({
        actor: { type: 'system', id: 'enrollment-listener' },
        action: 'silo.enrollment.refused',
        ...(result.siloId ? { subject: { siloId: result.siloId } } : {}),
        details: { reason: result.refused, remoteAddress },
      });
      throw new HubException(HubErrorCode.ENROLLMENT_TOKEN_INVALID, result.refused);
    }
    if (!('grant' in result)) throw new Error('unreachable');
    return result.grant;
  }

  /**
   * Renewal over mutual TLS: a CSR with a new key for the same silo. The new certificate joins the lineage of the one
   * presented (revoking either revokes both). Refused (renewal-policy.util.ts) when the presented certificate is no
   * longer active, the key was certified before, a renewed certificate of the lineage is still unused, or the silo
   * renewed less than an hour ago while its certificate is not yet due. Decided under the silo's lock, so of two
   * simultaneous renewals exactly one is issued.
   */
  async renew(identity: SiloIdentity, csrPem: string, now = new Date()): Promise<CertificateGrant> {
    const actor: AuditActor = { type: 'silo', id: identity.siloId, name: identity.name };
    type RenewalRefusal = { kind: string; code: HubErrorCode; message: string; recorded?: string; details?: unknown };
    const refuseRenewal = async (refusal: RenewalRefusal): Promise<HubException> => {
      await this.refusals.record({
        action: 'silo.certificate.renewal.refused',
        actor,
        fingerprintSha256: identity.certificateFingerprintSha256,
        reason: refusal.recorded ?? refusal.message,
        kind: refusal.kind,
        subject: { siloId: identity.siloId, certificateSerial: identity.certificateSerial },
      });
      return new HubException(refusal.code, refusal.message, refusal.details);
    };
    // The CSR is checked (signature, identity, key size) before the silo is locked: it needs no database state.
    let requestedKeySha256: string;
    try {
      requestedKeySha256 = parseCsr(csrPem, { expectedSiloId: identity.siloId }).publicKeySha256;
    } catch (err) {
      if (!(err instanceof PkiException)) throw err;
      throw await refuseRenewal({
        kind: 'csr',
        code: HubErrorCode.CSR_REJECTED,
        message: `The certificate request was refused: ${err.message}`,
        // Refusals are aggregated per reason: the record names the check, not text the CSR itself carried.
        recorded: `The certificate request was refused (${err.code}).`,
        details: { code: err.code },
      });
    }
    type Outcome = { refused: RenewalVerdict & { allowed: false } } | { grant: CertificateGrant };
    const outcome = await this.db.transaction(async (tx): Promise<Outcome> => {
      const silo = await this.lockSilo(tx, identity.siloId);
      if (silo.status === 'suspended') {
        throw new HubException(HubErrorCode.SILO_SUSPENDED, 'This silo is suspended; it cannot renew certificates.');
      }
      const certificates = await tx.getRepository(SiloCertificateEntity).find({ where: { siloId: silo.id } });
      const presenting = certificates.find((c) => c.serial === identity.certificateSerial);
      if (!presenting) throw this.refuse('This client certificate is not one the hub issued to this silo.');
      const verdict = renewalVerdict({ presenting, siloCertificates: certificates, requestedKeySha256, now });
      if (!verdict.allowed) return { refused: verdict };
      if (verdict.abandoned.length > 0) {
        await tx
          .getRepository(SiloCertificateEntity)
          .update({ serial: In(verdict.abandoned) }, { status: 'superseded' });
      }
      const grant = await this.issue(
        tx,
        silo,
        csrPem,
        { via: 'renewal', lineageId: presenting.lineageId, parentSerial: presenting.serial },
        now,
      );
      await this.audit.record({
        actor,
        action: 'silo.certificate.renewed',
        subject: { siloId: identity.siloId, certificateSerial: grant.serial },
        details: {
          previousSerial: identity.certificateSerial,
          notAfter: grant.notAfter,
          ...(verdict.abandoned.length > 0 ? { supersededUnusedSerials: verdict.abandoned } : {}),
        },
      });
      return { grant };
    });
    if ('refused' in outcome) throw await refuseRenewal(outcome.refused);
    return outcome.grant;
  }

  /**
   * Maps a verified client certificate to its silo, or refuses it. Called on every silo request, so revocation and
   * suspension take effect on the very next request. The first use of a renewed certificate supersedes the older
   * ones (an agent that crashed before saving its new certificate can still use the old one until then). A request
   * with a valid certificate is the silo's agent seen (SiloPresence), suspended or not: a suspended agent that keeps
   * asking is alive.
   */
  async identify(fingerprintSha256: string, now = new Date(), contact?: AgentContact): Promise<SiloIdentity> {
    // Every agent request is judged here. Reused until a write commits (ReadCache, embedded database only): a
    // revocation, suspension or renewal is a write, so it still takes effect on the very next request.
    const { cert, silo } = await this.cache.read(`silo-identity:${fingerprintSha256}`, async () => {
      const found = await this.db.getRepository(SiloCertificateEntity).findOne({ where: { fingerprintSha256 } });
      const owner = found ? await this.db.getRepository(SiloEntity).findOne({ where: { id: found.siloId } }) : null;
      return { cert: found, silo: owner };
    });
    if (!cert) throw this.refuse('This client certificate is not one the hub issued to an enrolled silo.');
    this.assertActive(cert);
    if (cert.notAfter.getTime() <= now.getTime())
      throw this.refuse(`This client certificate expired on ${cert.notAfter.toISOString()}.`);
    if (!silo) throw this.refuse('The silo of this certificate no longer exists.');
    if (contact) this.presence.opened(silo.id, 'silo', contact);
    if (silo.status === 'suspended') {
      throw new HubException(
        HubErrorCode.SILO_SUSPENDED,
        `This silo is suspended${silo.suspendedReason ? `: ${silo.suspendedReason}` : ''}.`,
      );
    }
    if (!cert.firstUsedAt) await this.firstUse(cert, now);
    return {
      siloId: silo.id,
      name: silo.name,
      certificateSerial: cert.serial,
      certificateFingerprintSha256: cert.fingerprintSha256,
      certificateNotAfter: cert.notAfter,
    };
  }

  async list(): Promise<SiloView[]> {
    const silos = await this.db.getRepository(SiloEntity).find({ order: { createdAt: 'ASC' } });
    return this.views(silos);
  }

  async get(siloId: string): Promise<SiloView & { certificates: CertificateView[] }> {
    const silo = await this.db.getRepository(SiloEntity).findOne({ where: { id: siloId } });
    if (!silo) throw new HubException(HubErrorCode.NOT_FOUND, `No silo with id ${siloId}.`);
    const certificates = await this.db
      .getRepository(SiloCertificateEntity)
      .find({ where: { siloId }, order: { createdAt: 'DESC' } });
    const [view] = await this.views([silo]);
    return { ...view!, certificates: certificates.map(certificateView) };
  }

  async suspend(siloId: string, reason: string, actor: AuditActor): Promise<SiloView> {
    await this.db.transaction(async (tx) => {
      const silo = await this.lockSilo(tx, siloId);
      await tx.getRepository(SiloEntity).update(silo.id, { status: 'suspended', suspendedReason: reason });
      await this.audit.record({ actor, action: 'silo.suspended', subject: { siloId }, details: { reason } });
    });
    return this.get(siloId);
  }

  async resume(siloId: string, actor: AuditActor): Promise<SiloView> {
    await this.db.transaction(async (tx) => {
      const silo = await this.lockSilo(tx, siloId);
      if (silo.status !== 'suspended') throw new HubException(HubErrorCode.CONFLICT, 'This silo is not suspended.');
      const hasCertificate = await tx
        .getRepository(SiloCertificateEntity)
        .exists({ where: { siloId, status: 'active' } });
      await tx
        .getRepository(SiloEntity)
        .update(silo.id, { status: hasCertificate ? 'enrolled' : 'registered', suspendedReason: null });
      await this.audit.record({ actor, action: 'silo.resumed', subject: { siloId } });
    });
    return this.get(siloId);
  }

  /**
   * Revokes a certificate and, with it, its whole lineage: the enrollment certificate it descends from and every
   * renewal, past or pending. A key stolen and renewed before the revocation is therefore refused too.
   */
  async revokeCertificate(siloId: string, serial: string, reason: string, actor: AuditActor): Promise<CertificateView> {
    const cert = await this.db.transaction(async (tx) => {
      await this.lockSilo(tx, siloId);
      const certs = tx.getRepository(SiloCertificateEntity);
      const found = await certs.findOne({ where: { serial, siloId } });
      if (!found)
        throw new HubException(HubErrorCode.NOT_FOUND, `Silo ${siloId} has no certificate with serial ${serial}.`);
      const lineage = await certs.find({ where: { lineageId: found.lineageId } });
      const live = lineage.filter((c) => c.status !== 'revoked');
      if (live.length === 0)
        throw new HubException(HubErrorCode.CONFLICT, `Certificate ${serial} and its lineage are already revoked.`);
      const now = new Date();
      for (const c of live) {
        const why = c.serial === serial ? reason : `${reason} (revoked with certificate ${serial} of the same lineage)`;
        await certs.update(c.serial, { status: 'revoked', revokedAt: now, revocationReason: why });
      }
      await this.audit.record({
        actor,
        action: 'silo.certificate.revoked',
        subject: { siloId, certificateSerial: serial },
        details: { reason, lineageId: found.lineageId, revokedSerials: live.map((c) => c.serial) },
      });
      return certs.findOneByOrFail({ serial });
    });
    return certificateView(cert);
  }

  private refuse(message: string): HubException {
    return new HubException(HubErrorCode.SILO_IDENTITY_REFUSED, message);
  }

  private assertActive(cert: SiloCertificateEntity): void {
    if (cert.status === 'revoked') {
      throw this.refuse(
        `This client certificate (serial ${cert.serial}) was revoked: ${cert.revocationReason ?? 'no reason given'}.`,
      );
    }
    if (cert.status === 'superseded') {
      throw this.refuse(`This client certificate (serial ${cert.serial}) was replaced by a renewed one.`);
    }
  }

  /**
   * Marks a certificate used; the first use of a renewal supersedes the older certificates of its lineage. Under the
   * silo's lock, like renewal and revocation, so a certificate revoked or superseded a moment ago is not revived.
   */
  private async firstUse(cert: SiloCertificateEntity, now: Date): Promise<void> {
    await this.db.transaction(async (tx) => {
      await this.lockSilo(tx, cert.siloId);
      const certs = tx.getRepository(SiloCertificateEntity);
      const current = await certs.findOneBy({ serial: cert.serial });
      if (!current || current.firstUsedAt) return;
      this.assertActive(current);
      await certs.update(current.serial, { firstUsedAt: now });
      if (current.issuedVia !== 'renewal') return;
      await tx
        .createQueryBuilder()
        .update(SiloCertificateEntity)
        .set({ status: 'superseded' })
        .where('lineage_id = :lineageId AND status = :active AND serial <> :serial AND created_at <= :createdAt', {
          lineageId: current.lineageId,
          active: 'active',
          serial: current.serial,
          createdAt: current.createdAt,
        })
        .execute();
    });
  }

  private async issue(
    tx: EntityManager,
    silo: SiloEntity,
    csrPem: string,
    origin: { via: 'enrollment' } | { via: 'renewal'; lineageId: string; parentSerial: string },
    now: Date,
  ): Promise<CertificateGrant> {
    let issued;
    try {
      issued = issueSiloCertificate({
        ca: this.pki.certificateAuthority(),
        csr: csrPem,
        siloId: silo.id,
        validityDays: this.config.siloCertificateDays,
        now,
      });
    } catch (err) {
      if (err instanceof PkiException) {
        throw new HubException(HubErrorCode.CSR_REJECTED, `The certificate request was refused: ${err.message}`, {
          code: err.code,
        });
      }
      throw err;
    }
    await tx.getRepository(SiloCertificateEntity).insert({
      serial: issued.serialHex,
      siloId: silo.id,
      fingerprintSha256: issued.fingerprintSha256,
      notBefore: issued.notBefore,
      notAfter: issued.notAfter,
      status: 'active',
      issuedVia: origin.via,
      // An enrollment starts a new lineage; a renewal continues the one it was requested from.
      lineageId: origin.via === 'enrollment' ? randomUUID() : origin.lineageId,
      parentSerial: origin.via === 'enrollment' ? null : origin.parentSerial,
      publicKeySha256: issued.publicKeySha256,
      certificatePem: issued.certificatePem,
    });
    return {
      siloId: silo.id,
      certificatePem: issued.certificatePem,
      caCertificatePem: this.pki.certificateAuthority().certificatePem,
      serial: issued.serialHex,
      notAfter: issued.notAfter.toISOString(),
      hubSiloUrl: this.hubSiloUrl(),
    };
  }

  private async lockSilo(tx: EntityManager, siloId: string): Promise<SiloEntity> {
    const silo = await tx
      .getRepository(SiloEntity)
      .findOne({ where: { id: siloId }, lock: { mode: 'pessimistic_write' } });
    if (!silo) throw new HubException(HubErrorCode.NOT_FOUND, `No silo with id ${siloId}.`);
    return silo;
  }

  private async revokeAll(tx: EntityManager, siloId: string, reason: string, now: Date): Promise<string[]> {
    const certs = tx.getRepository(SiloCertificateEntity);
    const live = await certs.find({
      where: [
        { siloId, status: 'active' },
        { siloId, status: 'superseded' },
      ],
    });
    for (const c of live) {
      await certs.update(c.serial, { status: 'revoked', revokedAt: now, revocationReason: reason });
    }
    return live.map((c) => c.serial);
  }

  private async newToken(tx: EntityManager, siloId: string): Promise<{ token: string; expiresAt: Date }> {
    const tokens = tx.getRepository(EnrollmentTokenEntity);
    await tokens.update({ siloId, usedAt: IsNull(), withdrawnAt: IsNull() }, { withdrawnAt: new Date() });
    const token = randomBytes(TOKEN_BYTES).toString('base64url');
    const expiresAt = new Date(Date.now() + this.config.enrollmentTokenHours * 3_600_000);
    await tokens.insert({ siloId, tokenHash: hashToken(token), expiresAt });
    return { token, expiresAt };
  }

  private async enrollmentIssued(siloId: string, token: string, expiresAt: Date): Promise<EnrollmentIssued> {
    const silo = await this.get(siloId);
    const bundle: EnrollmentBundle = {
      format: 'tessera.enrollment-bundle/1',
      siloId,
      siloName: silo.name,
      enrollUrl: this.enrollUrl(),
      hubSiloUrl: this.hubSiloUrl(),
      token,
      caFingerprintSha256: this.pki.caFingerprintSha256(),
      expiresAt: expiresAt.toISOString(),
    };
    const { certificates: _certificates, ...view } = silo;
    return { silo: view, bundle, bundleText: encodeEnrollmentBundle(bundle) };
  }

  /**
   * Silos as administrators see them, with each one's newest active certificate and pending enrollment: three
   * queries whatever the number of silos (the console polls this list).
   */
  private async views(silos: SiloEntity[]): Promise<SiloView[]> {
    if (silos.length === 0) return [];
    const ids = silos.map((s) => s.id);
    const certs = await this.db.getRepository(SiloCertificateEntity).find({
      select: { siloId: true, serial: true, notAfter: true, status: true, createdAt: true },
      where: { siloId: In(ids), status: 'active' },
      order: { createdAt: 'DESC' },
    });
    const latest = await this.db.getRepository(SiloCertificateEntity).find({
      select: {
        siloId: true,
        serial: true,
        notAfter: true,
        status: true,
        createdAt: true,
        revokedAt: true,
        revocationReason: true,
      },
      where: { siloId: In(ids) },
      order: { createdAt: 'DESC' },
    });
    const pending = await this.db.getRepository(EnrollmentTokenEntity).find({
      select: { siloId: true, expiresAt: true, createdAt: true },
      where: { siloId: In(ids), usedAt: IsNull(), withdrawnAt: IsNull() },
      order: { createdAt: 'DESC' },
    });
    const newest = <T extends { siloId: string }>(rows: T[]): Map<string, T> => {
      const m = new Map<string, T>();
      for (const r of rows) if (!m.has(r.siloId)) m.set(r.siloId, r); // rows come newest first
      return m;
    };
    const certOf = newest(certs);
    const latestOf = newest(latest);
    const tokenOf = newest(pending);
    const now = Date.now();
    return silos.map((s) => {
      const cert = certOf.get(s.id);
      const token = tokenOf.get(s.id);
      const last = latestOf.get(s.id);
      const agent = this.presence.view(s.id, s);
      return {
        id: s.id,
        name: s.name,
        contact: s.contact,
        status: s.status,
        suspendedReason: s.suspendedReason,
        lastSeenAt: agent.lastSeen.silo,
        createdAt: s.createdAt.toISOString(),
        certificate: cert ? { serial: cert.serial, notAfter: cert.notAfter.toISOString(), status: cert.status } : null,
        latestCertificate: last
          ? {
              serial: last.serial,
              notAfter: last.notAfter.toISOString(),
              status: last.status,
              revokedAt: last.revokedAt?.toISOString() ?? null,
              revocationReason: last.revocationReason,
            }
          : null,
        enrollmentPending:
          token && token.expiresAt.getTime() > now ? { expiresAt: token.expiresAt.toISOString() } : null,
        agent,
      };
    });
  }

  /**
   * A view read from the cache with the agent's facts as they are now: open requests and the current task change
   * without a database write, so a cached view's `agent` is recomputed (its stored times and software are kept).
   */
  live<T extends SiloView>(view: T): T {
    const stored = view.agent;
    const date = (iso: string | null | undefined) => (iso ? new Date(iso) : null);
    const agent = this.presence.view(view.id, {
      lastSeenAt: date(stored?.lastSeen.silo ?? view.lastSeenAt),
      enrollLastSeenAt: date(stored?.lastSeen.enroll),
      agentVersion: stored?.software?.version ?? null,
      agentPlatform: stored?.software?.platform ?? null,
      agentNode: stored?.software?.node ?? null,
    });
    return { ...view, lastSeenAt: agent.lastSeen.silo, agent };
  }

  /** Filled in by the hub once its listeners are bound (the ports may be chosen by the OS). */
  private listenerUrls: { silo: string; enroll: string } | undefined;

  setListenerUrls(urls: { silo: string; enroll: string }): void {
    this.listenerUrls = urls;
  }

  hubSiloUrl(): string {
    return (
      this.config.publicSiloUrl ?? this.listenerUrls?.silo ?? `https://${this.config.siloHost}:${this.config.siloPort}`
    );
  }

  enrollUrl(): string {
    return (
      this.config.publicEnrollUrl ??
      this.listenerUrls?.enroll ??
      `https://${this.config.enrollHost}:${this.config.enrollPort}`
    );
  }
}
