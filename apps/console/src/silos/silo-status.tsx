import type { SiloView } from '@tessera/protocol';
import { formatRelative, formatTime } from '../lib/format.js';
import { siloHealth } from '../lib/silo-health.js';
import { Badge, type Tone } from '../ui/feedback.js';

const STATUS_TONE: Record<string, Tone> = { registered: 'info', enrolled: 'success', suspended: 'danger' };

export function SiloStatusBadge({ silo }: { silo: SiloView }) {
  return (
    <Badge tone={STATUS_TONE[silo.status] ?? 'neutral'} title={silo.suspendedReason ?? undefined}>
      {silo.status}
    </Badge>
  );
}

export function SiloConnectivity({ silo, now }: { silo: SiloView; now?: number }) {
  const h = siloHealth(silo, now);
  if (h.connectivity === 'never') return <span className="muted">never connected</span>;
  return (
    <span title={formatTime(silo.lastSeenAt)}>
      <span className={`dot dot-${h.connectivity}`} aria-hidden="true" />
      {h.connectivity === 'online' ? 'online' : 'offline'}
      <span className="muted"> · seen {formatRelative(silo.lastSeenAt, now)}</span>
    </span>
  );
}

export function CertificateExpiry({ silo, now }: { silo: SiloView; now?: number }) {
  const h = siloHealth(silo, now);
  if (!silo.certificate) {
    return silo.enrollmentPending ? (
      <span className="muted" title={formatTime(silo.enrollmentPending.expiresAt)}>
        enrollment pending (token expires {formatRelative(silo.enrollmentPending.expiresAt, now)})
      </span>
    ) : (
      <span className="muted">no certificate</span>
    );
  }
  const label = `expires ${formatRelative(silo.certificate.notAfter, now)}`;
  if (h.certificate === 'expired') return <Badge tone="danger">expired {formatTime(silo.certificate.notAfter)}</Badge>;
  if (h.certificate === 'expiring')
    return (
      <Badge tone="warning" title={`${formatTime(silo.certificate.notAfter)}: the agent has not renewed it`}>
        ⚠ {label}
      </Badge>
    );
  return <span title={formatTime(silo.certificate.notAfter)}>{label}</span>;
}
