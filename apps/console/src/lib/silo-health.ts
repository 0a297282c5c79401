import type { SiloView } from '@tessera/protocol';

/** An agent that made a request within this window counts as online (its long poll returns every few seconds). */
export const ONLINE_WINDOW_MS = 2 * 60_000;
/**
 * Warn when a certificate has fewer days than this left. Agents renew once a third of the lifetime remains (10 of
 * the default 30 days), so a certificate this close to its end means the agent is not renewing.
 */
export const CERTIFICATE_WARNING_DAYS = 7;

export type Connectivity = 'online' | 'offline' | 'never';
export type CertificateHealth = 'ok' | 'expiring' | 'expired' | 'none';

export interface SiloHealth {
  connectivity: Connectivity;
  certificate: CertificateHealth;
  /** Whole days until the certificate expires (negative once expired), or null without a certificate. */
  certificateDaysLeft: number | null;
}

export function siloHealth(silo: SiloView, now: number = Date.now()): SiloHealth {
  const seen = silo.lastSeenAt ? new Date(silo.lastSeenAt).getTime() : null;
  const connectivity: Connectivity = seen === null ? 'never' : now - seen <= ONLINE_WINDOW_MS ? 'online' : 'offline';
  if (!silo.certificate) return { connectivity, certificate: 'none', certificateDaysLeft: null };
  const msLeft = new Date(silo.certificate.notAfter).getTime() - now;
  const daysLeft = Math.floor(msLeft / 86_400_000);
  const certificate: CertificateHealth =
    msLeft <= 0 ? 'expired' : daysLeft < CERTIFICATE_WARNING_DAYS ? 'expiring' : 'ok';
  return { connectivity, certificate, certificateDaysLeft: daysLeft };
}
