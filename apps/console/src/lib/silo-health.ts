import type { AgentTask, SiloView } from '@tessera/protocol';

/** Hubs older than SiloView.agent wrote last_seen_at every 30 s at most: their agents count online this long. */
export const LEGACY_ONLINE_WINDOW_MS = 2 * 60_000;
/**
 * Warn when a certificate has fewer days than this left. Agents renew once a third of the lifetime remains (10 of
 * the default 30 days), so a certificate this close to its end means the agent is not renewing.
 */
export const CERTIFICATE_WARNING_DAYS = 7;

/**
 * - `online`: a request of the agent was open at the hub when it answered (a long poll waiting for work, a download),
 *   or its last one ended less than `offlineAfterSeconds` ago (it heartbeats at its poll wait during a task);
 * - `offline`: seen before, not within that window;
 * - `refused`: the hub refuses its certificate (revoked, expired, none): whatever it last did, it cannot work;
 * - `never`: the hub has never seen it.
 */
export type Connectivity = 'online' | 'offline' | 'refused' | 'never';
export type CertificateHealth = 'ok' | 'expiring' | 'expired' | 'revoked' | 'none';
/** What the silo is, with the certificate's state winning over the stored status (a revoked silo is not "enrolled"). */
export type Standing = 'registered' | 'enrollment pending' | 'enrolled' | 'suspended' | 'revoked' | 'expired';

export interface SiloHealth {
  standing: Standing;
  connectivity: Connectivity;
  /** A request of the agent was open at the hub when it answered (it is waiting for work, or transferring). */
  connected: boolean;
  certificate: CertificateHealth;
  /** Whole days until the certificate expires (negative once expired), or null without a certificate. */
  certificateDaysLeft: number | null;
  /** The task the agent says it carries out, while it is online; null otherwise. */
  task: (AgentTask & { since: string }) | null;
  /** Last request seen on the silo listener (mutual TLS). */
  lastSeenAt: string | null;
}

/**
 * The silo's health from the hub's facts. Times are judged on the hub's clock: `observedAt` (the hub's clock when it
 * answered) moved on by the time since the answer arrived (`answeredAt`, the browser's clock), so a browser whose
 * clock is off does not call an agent offline.
 */
export function siloHealth(silo: SiloView, now: number = Date.now(), answeredAt: number = now): SiloHealth {
  const certificate = certificateHealth(silo, now);
  const agent = silo.agent;
  const lastSeenAt = agent?.lastSeen.silo ?? silo.lastSeenAt;
  const seen = lastSeenAt ? new Date(lastSeenAt).getTime() : null;
  const hubNow = agent ? new Date(agent.observedAt).getTime() + Math.max(0, now - answeredAt) : now;
  const windowMs = agent ? agent.offlineAfterSeconds * 1000 : LEGACY_ONLINE_WINDOW_MS;
  // An open request counts only while the answer is fresh: past the window the agent may have gone since.
  const connected = (agent?.openRequests ?? 0) > 0 && hubNow - new Date(agent!.observedAt).getTime() <= windowMs;
  const refused = certificate.health === 'revoked' || certificate.health === 'expired';
  const connectivity: Connectivity = refused
    ? 'refused'
    : seen === null && !connected
      ? 'never'
      : connected || (seen !== null && hubNow - seen <= windowMs)
        ? 'online'
        : 'offline';
  return {
    standing: standingOf(silo, certificate.health),
    connectivity,
    connected: connected && !refused,
    certificate: certificate.health,
    certificateDaysLeft: certificate.daysLeft,
    task: connectivity === 'online' ? (agent?.task ?? null) : null,
    lastSeenAt,
  };
}

function certificateHealth(silo: SiloView, now: number): { health: CertificateHealth; daysLeft: number | null } {
  if (!silo.certificate) {
    return { health: silo.latestCertificate?.status === 'revoked' ? 'revoked' : 'none', daysLeft: null };
  }
  const msLeft = new Date(silo.certificate.notAfter).getTime() - now;
  const daysLeft = Math.floor(msLeft / 86_400_000);
  const health: CertificateHealth = msLeft <= 0 ? 'expired' : daysLeft < CERTIFICATE_WARNING_DAYS ? 'expiring' : 'ok';
  return { health, daysLeft };
}

function standingOf(silo: SiloView, certificate: CertificateHealth): Standing {
  if (certificate === 'revoked' && !silo.enrollmentPending) return 'revoked';
  if (certificate === 'expired') return 'expired';
  if (silo.status === 'suspended') return 'suspended';
  if (certificate === 'none' || certificate === 'revoked') {
    return silo.enrollmentPending ? 'enrollment pending' : 'registered';
  }
  return 'enrolled';
}
