import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { CertificateGrant, CertificateView } from '@tessera/protocol';
import { issueSiloCertificate, parseCsr, PkiException } from '@tessera/pki';
import { AuditTrail, type AuditActor } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import { ReadCache } from '../database/read-cache';
import { HubPkiService } from '../pki/hub-pki.service';
import { RefusalRecorder } from './refusal-recorder.service';
import { renewalVerdict, type RenewalVerdict } from './renewal-policy.util';
import type { SiloCertificateEntity } from './silo-certificate.entity';
import type { SiloIdentity } from './silo-identity';
import { SiloPresence, type AgentContact } from './silo-presence.service';
import type { SiloEntity } from './silo.entity';
import { SilosRepository, type SilosUnitOfWork } from './silos.repository';
import { certificateView, hashToken, lockedSilo, SilosService } from './silos.service';

/**
 * A silo's certificates from first to last: one-time enrollment (a token and a CSR for the first certificate),
 * renewal over mutual TLS within the certificate's lineage, revocation of a whole lineage, and the identity check of
 * every silo request, whose first use of a renewed certificate retires the older ones. Each change is decided under
 * the silo's row lock and audited in its own transaction.
 */
@Injectable()
export class SiloCertificatesService {
  constructor(
    private readonly store: SilosRepository,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    private readonly pki: HubPkiService,
    private readonly audit: AuditTrail,
    private readonly refusals: RefusalRecorder,
    private readonly presence: SiloPresence,
    private readonly cache: ReadCache,
    private readonly silos: SilosService,
  ) {}

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
    const result = await this.store.inTransaction(async (tx): Promise<Outcome> => {
      const row = await tx.lockToken(hashToken(token));
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
      const silo = await lockedSilo(tx, row.siloId);
      if (silo.status === 'suspended') {
        throw new HubException(
          HubErrorCode.SILO_SUSPENDED,
          'This silo is suspended; the hub administrator must resume it.',
        );
      }
      const grant = await this.issue(tx, silo, csrPem, { via: 'enrollment' }, now);
      await tx.markTokenUsed(row.id, now);
      await tx.updateSilo(silo.id, { status: 'enrolled' });
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
    const outcome = await this.store.inTransaction(async (tx): Promise<Outcome> => {
      const silo = await lockedSilo(tx, identity.siloId);
      if (silo.status === 'suspended') {
        throw new HubException(HubErrorCode.SILO_SUSPENDED, 'This silo is suspended; it cannot renew certificates.');
      }
      const certificates = await tx.certificatesOf(silo.id);
      const presenting = certificates.find((c) => c.serial === identity.certificateSerial);
      if (!presenting) throw this.refuse('This client certificate is not one the hub issued to this silo.');
      const verdict = renewalVerdict({ presenting, siloCertificates: certificates, requestedKeySha256, now });
      if (!verdict.allowed) return { refused: verdict };
      if (verdict.abandoned.length > 0) await tx.supersede(verdict.abandoned);
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
      const found = await this.store.certificateByFingerprint(fingerprintSha256);
      const owner = found ? await this.store.findSilo(found.siloId) : null;
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

  /**
   * Revokes a certificate and, with it, its whole lineage: the enrollment certificate it descends from and every
   * renewal, past or pending. A key stolen and renewed before the revocation is therefore refused too.
   */
  async revokeCertificate(siloId: string, serial: string, reason: string, actor: AuditActor): Promise<CertificateView> {
    const cert = await this.store.inTransaction(async (tx) => {
      await lockedSilo(tx, siloId);
      const found = await tx.certificateOf(siloId, serial);
      if (!found)
        throw new HubException(HubErrorCode.NOT_FOUND, `Silo ${siloId} has no certificate with serial ${serial}.`);
      const lineage = await tx.lineage(found.lineageId);
      const live = lineage.filter((c) => c.status !== 'revoked');
      if (live.length === 0)
        throw new HubException(HubErrorCode.CONFLICT, `Certificate ${serial} and its lineage are already revoked.`);
      const now = new Date();
      for (const c of live) {
        const why = c.serial === serial ? reason : `${reason} (revoked with certificate ${serial} of the same lineage)`;
        await tx.revokeCertificate(c.serial, now, why);
      }
      await this.audit.record({
        actor,
        action: 'silo.certificate.revoked',
        subject: { siloId, certificateSerial: serial },
        details: { reason, lineageId: found.lineageId, revokedSerials: live.map((c) => c.serial) },
      });
      const revoked = await tx.certificate(serial);
      if (!revoked) throw new Error(`certificate ${serial} vanished under its silo's lock`);
      return revoked;
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
    await this.store.inTransaction(async (tx) => {
      await lockedSilo(tx, cert.siloId);
      const current = await tx.certificate(cert.serial);
      if (!current || current.firstUsedAt) return;
      this.assertActive(current);
      await tx.markFirstUse(current.serial, now);
      if (current.issuedVia !== 'renewal') return;
      await tx.supersedeOlderOfLineage(current);
    });
  }

  private async issue(
    tx: SilosUnitOfWork,
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
    await tx.insertCertificate({
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
      hubSiloUrl: this.silos.hubSiloUrl(),
    };
  }
}
