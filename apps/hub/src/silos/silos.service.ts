import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { CertificateView, EnrollmentBundle, SiloView } from '@tessera/protocol';
import { encodeEnrollmentBundle } from '@tessera/protocol';
import { AuditTrail, type AuditActor } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import { HubPkiService } from '../pki/hub-pki.service';
import type { SiloCertificateEntity } from './silo-certificate.entity';
import { SiloPresence } from './silo-presence.service';
import type { SiloEntity } from './silo.entity';
import { SilosRepository, type SilosUnitOfWork } from './silos.repository';

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

export function certificateView(c: SiloCertificateEntity): CertificateView {
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

/**
 * The silo's row, locked for the rest of the transaction (renewals, revocations, re-enrollments and first uses of one
 * silo are decided one after another), or NOT_FOUND.
 */
export async function lockedSilo(tx: SilosUnitOfWork, siloId: string): Promise<SiloEntity> {
  const silo = await tx.lockSilo(siloId);
  if (!silo) throw new HubException(HubErrorCode.NOT_FOUND, `No silo with id ${siloId}.`);
  return silo;
}

/**
 * The silos administrators manage: registration and re-enrollment (each issues a one-time enrollment token),
 * suspension, the views the console lists, and the URLs agents are told. Certificates (enrollment, renewal,
 * revocation, identity checks) are SiloCertificatesService's.
 */
@Injectable()
export class SilosService {
  constructor(
    private readonly store: SilosRepository,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    private readonly pki: HubPkiService,
    private readonly audit: AuditTrail,
    private readonly presence: SiloPresence,
  ) {}

  async register(input: { name: string; contact: string }, actor: AuditActor): Promise<EnrollmentIssued> {
    const { silo, token, expiresAt } = await this.store.inTransaction(async (tx) => {
      if (await tx.findSiloByName(input.name)) {
        throw new HubException(HubErrorCode.CONFLICT, `A silo named "${input.name}" already exists.`);
      }
      const created = await tx.insertSilo({ name: input.name, contact: input.contact, status: 'registered' });
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
    const { token, expiresAt } = await this.store.inTransaction(async (tx) => {
      const silo = await lockedSilo(tx, siloId);
      const now = new Date();
      const revoked = await this.revokeAll(tx, silo.id, 're-enrollment', now);
      if (silo.status === 'enrolled') await tx.updateSilo(silo.id, { status: 'registered' });
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

  async list(): Promise<SiloView[]> {
    const silos = await this.store.listSilos();
    return this.views(silos);
  }

  async get(siloId: string): Promise<SiloView & { certificates: CertificateView[] }> {
    const silo = await this.store.findSilo(siloId);
    if (!silo) throw new HubException(HubErrorCode.NOT_FOUND, `No silo with id ${siloId}.`);
    const certificates = await this.store.certificatesOf(siloId);
    const [view] = await this.views([silo]);
    return { ...view!, certificates: certificates.map(certificateView) };
  }

  async suspend(siloId: string, reason: string, actor: AuditActor): Promise<SiloView> {
    await this.store.inTransaction(async (tx) => {
      const silo = await lockedSilo(tx, siloId);
      await tx.updateSilo(silo.id, { status: 'suspended', suspendedReason: reason });
      await this.audit.record({ actor, action: 'silo.suspended', subject: { siloId }, details: { reason } });
    });
    return this.get(siloId);
  }

  async resume(siloId: string, actor: AuditActor): Promise<SiloView> {
    await this.store.inTransaction(async (tx) => {
      const silo = await lockedSilo(tx, siloId);
      if (silo.status !== 'suspended') throw new HubException(HubErrorCode.CONFLICT, 'This silo is not suspended.');
      const hasCertificate = await tx.hasActiveCertificate(siloId);
      await tx.updateSilo(silo.id, { status: hasCertificate ? 'enrolled' : 'registered', suspendedReason: null });
      await this.audit.record({ actor, action: 'silo.resumed', subject: { siloId } });
    });
    return this.get(siloId);
  }

  /** Revokes every certificate of the silo that is not revoked yet, in every lineage; returns their serials. */
  private async revokeAll(tx: SilosUnitOfWork, siloId: string, reason: string, now: Date): Promise<string[]> {
    const live = await tx.unrevokedCertificatesOf(siloId);
    for (const c of live) await tx.revokeCertificate(c.serial, now, reason);
    return live.map((c) => c.serial);
  }

  /** A new one-time token for the silo; its unused tokens are withdrawn (only the newest bundle enrolls). */
  private async newToken(tx: SilosUnitOfWork, siloId: string): Promise<{ token: string; expiresAt: Date }> {
    await tx.withdrawOpenTokens(siloId, new Date());
    const token = randomBytes(TOKEN_BYTES).toString('base64url');
    const expiresAt = new Date(Date.now() + this.config.enrollmentTokenHours * 3_600_000);
    await tx.insertToken({ siloId, tokenHash: hashToken(token), expiresAt });
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
    const { active: certs, latest, pendingTokens: pending } = await this.store.viewRows(ids);
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
