import type { SiloView } from '@tessera/protocol';
import { Link } from 'react-router';
import { formatRelative, formatTime } from '../lib/format.js';
import { siloHealth, type SiloHealth, type Standing } from '../lib/silo-health.js';
import { Badge, type Tone } from '../ui/feedback.js';

const STANDING_TONE: Record<Standing, Tone> = {
  registered: 'info',
  'enrollment pending': 'info',
  enrolled: 'success',
  suspended: 'danger',
  revoked: 'danger',
  expired: 'danger',
};

/** When the answer holding the silo arrived (the browser's clock): the hub's facts are aged from there. */
export interface AnswerTime {
  now?: number;
  answeredAt?: number;
}

function healthOf(silo: SiloView, { now, answeredAt }: AnswerTime): SiloHealth {
  const at = now ?? Date.now();
  return siloHealth(silo, at, answeredAt ?? at);
}

/** The silo's standing: the certificate's state wins over the stored status (a revoked silo never reads enrolled). */
export function SiloStatusBadge({ silo, ...time }: { silo: SiloView } & AnswerTime) {
  const h = healthOf(silo, time);
  const title =
    h.standing === 'suspended'
      ? (silo.suspendedReason ?? undefined)
      : h.standing === 'revoked'
        ? (silo.latestCertificate?.revocationReason ?? undefined)
        : undefined;
  return (
    <Badge tone={STANDING_TONE[h.standing]} title={title}>
      {h.standing}
    </Badge>
  );
}

/** Online, offline, refused or never seen, with what the agent is doing and when it was last seen. */
export function SiloConnectivity({ silo, ...time }: { silo: SiloView } & AnswerTime) {
  const h = healthOf(silo, time);
  const seen = (
    <span className="muted" title={formatTime(h.lastSeenAt)}>
      {' '}
      · last request {formatRelative(h.lastSeenAt, time.now)}
    </span>
  );
  if (h.connectivity === 'refused') {
    return (
      <span data-connectivity="refused">
        <span className="dot dot-offline" aria-hidden="true" />
        refused: certificate {h.certificate === 'expired' ? 'expired' : 'revoked'}
        {h.lastSeenAt ? seen : null}
      </span>
    );
  }
  if (h.connectivity === 'never') {
    return (
      <span className="muted" data-connectivity="never">
        never connected
      </span>
    );
  }
  const doing =
    h.connectivity !== 'online'
      ? null
      : h.standing === 'suspended'
        ? 'waiting to be resumed'
        : h.task
          ? null
          : h.connected
            ? 'waiting for work'
            : null;
  return (
    <span data-connectivity={h.connectivity}>
      <span className={`dot dot-${h.connectivity}`} aria-hidden="true" />
      {h.connectivity}
      {doing ? <span> · {doing}</span> : null}
      {h.task ? (
        <span>
          {' '}
          · {h.task.kind === 'train' ? 'training' : 'evaluating'}{' '}
          <Link to={`/studies/${h.task.studyId}`}>round {h.task.round}</Link>
          <span className="muted" title={formatTime(h.task.since)}>
            {' '}
            (since {formatRelative(h.task.since, time.now)})
          </span>
        </span>
      ) : null}
      {seen}
    </span>
  );
}

/** The agent's release and platform as it last reported them. */
export function AgentSoftwareLabel({ silo }: { silo: SiloView }) {
  const software = silo.agent?.software;
  if (!software) return <span className="muted">not reported</span>;
  return (
    <span className="mono" title={`Node.js ${software.node || 'unknown'}`}>
      {software.version} · {software.platform}
    </span>
  );
}

export function CertificateExpiry({ silo, ...time }: { silo: SiloView } & AnswerTime) {
  const h = healthOf(silo, time);
  const now = time.now;
  if (h.certificate === 'revoked') {
    const latest = silo.latestCertificate;
    return (
      <Badge tone="danger" title={latest?.revocationReason ?? undefined}>
        revoked {latest?.revokedAt ? formatRelative(latest.revokedAt, now) : ''}
      </Badge>
    );
  }
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

/** Last request seen on each of the hub's listeners the agent uses. */
export function LastSeenPerListener({ silo, now }: { silo: SiloView; now?: number }) {
  const lastSeen = silo.agent?.lastSeen ?? { silo: silo.lastSeenAt, enroll: null };
  return (
    <>
      <div>
        silo listener (mutual TLS): <span title={formatTime(lastSeen.silo)}>{formatRelative(lastSeen.silo, now)}</span>
      </div>
      <div className="small muted">
        enrollment listener: <span title={formatTime(lastSeen.enroll)}>{formatRelative(lastSeen.enroll, now)}</span>
      </div>
    </>
  );
}
