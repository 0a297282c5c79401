import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useParams } from 'react-router';
import type { CertificateView, EnrollmentIssuedView } from '@tessera/protocol';
import { useApi, useCanAdminister } from '../auth/session-context.js';
import { formatRelative, formatTime } from '../lib/format.js';
import { ConfirmDialog } from '../ui/actions.js';
import { Badge, EmptyState, ErrorMessage, Loading } from '../ui/feedback.js';
import { usePageTitle } from '../ui/page-title.js';
import { EnrollmentBundlePanel } from './enrollment-bundle-panel.js';
import { siloHealth } from '../lib/silo-health.js';
import {
  AgentSoftwareLabel,
  CertificateExpiry,
  LastSeenPerListener,
  SiloConnectivity,
  SiloStatusBadge,
} from './silo-status.js';

type Pending = { kind: 'suspend' } | { kind: 'resume' } | { kind: 'reenroll' } | { kind: 'revoke'; serial: string };

export function SiloDetailPage() {
  const { id = '' } = useParams();
  const api = useApi();
  const canAdminister = useCanAdminister();
  const queryClient = useQueryClient();
  // Every 5 s, like the list: an agent that dies shows offline within its long-poll interval.
  const silo = useQuery({ queryKey: ['silo', id], queryFn: () => api.silo(id), refetchInterval: 5_000 });
  const answeredAt = silo.dataUpdatedAt;
  usePageTitle(silo.data?.name ?? 'Silo');
  const [pending, setPending] = useState<Pending | null>(null);
  const [issued, setIssued] = useState<EnrollmentIssuedView | null>(null);

  const action = useMutation({
    mutationFn: async ({ p, reason }: { p: Pending; reason: string }): Promise<EnrollmentIssuedView | null> => {
      switch (p.kind) {
        case 'suspend':
          await api.suspendSilo(id, reason);
          return null;
        case 'resume':
          await api.resumeSilo(id);
          return null;
        case 'revoke':
          await api.revokeCertificate(id, p.serial, reason);
          return null;
        case 'reenroll':
          return api.reEnrollSilo(id);
      }
    },
    onSuccess: (result) => {
      setPending(null);
      if (result) setIssued(result);
      void queryClient.invalidateQueries({ queryKey: ['silo', id] });
      void queryClient.invalidateQueries({ queryKey: ['silos'] });
    },
  });

  if (silo.isPending) return <Loading label="Loading the silo…" />;
  if (silo.isError)
    return (
      <section className="page">
        <p>
          <Link to="/silos">← Silos</Link>
        </p>
        <ErrorMessage error={silo.error} title="The silo could not be loaded" />
      </section>
    );
  const s = silo.data;
  const health = siloHealth(s, Date.now(), answeredAt);
  const open = (p: Pending) => {
    action.reset();
    setPending(p);
  };
  return (
    <section className="page" aria-labelledby="silo-title">
      <p className="crumbs">
        <Link to="/silos">← Silos</Link>
      </p>
      <div className="page-head">
        <h1 id="silo-title">
          {s.name} <SiloStatusBadge silo={s} answeredAt={answeredAt} />
        </h1>
        {canAdminister ? (
          <div className="row">
            {s.status === 'suspended' ? (
              <button type="button" className="button button-secondary" onClick={() => open({ kind: 'resume' })}>
                Resume
              </button>
            ) : (
              <button type="button" className="button button-danger-outline" onClick={() => open({ kind: 'suspend' })}>
                Suspend
              </button>
            )}
            <button type="button" className="button button-secondary" onClick={() => open({ kind: 'reenroll' })}>
              Issue a new bundle
            </button>
          </div>
        ) : null}
      </div>
      {health.standing === 'revoked' ? (
        <div className="notice notice-danger">
          Its certificate was revoked
          {s.latestCertificate?.revocationReason ? ` (${s.latestCertificate.revocationReason})` : ''}: the hub refuses
          its agent. Issue a new bundle to enroll it again.
        </div>
      ) : health.standing === 'expired' ? (
        <div className="notice notice-danger">
          Its certificate expired without being renewed: the hub refuses its agent. Issue a new bundle to enroll it
          again.
        </div>
      ) : s.status === 'suspended' ? (
        <div className="notice notice-danger">
          Suspended{s.suspendedReason ? `: ${s.suspendedReason}` : ''}. The hub refuses this silo&apos;s agent until it
          is resumed; the agent waits and carries on by itself once resumed.
        </div>
      ) : null}
      {issued ? <EnrollmentBundlePanel issued={issued} onDone={() => setIssued(null)} /> : null}
      <dl className="facts">
        <div>
          <dt>Agent</dt>
          <dd>
            <SiloConnectivity silo={s} answeredAt={answeredAt} />
          </dd>
        </div>
        <div>
          <dt>Agent software</dt>
          <dd>
            <AgentSoftwareLabel silo={s} />
          </dd>
        </div>
        <div>
          <dt>Last request</dt>
          <dd>
            <LastSeenPerListener silo={s} />
          </dd>
        </div>
        <div>
          <dt>Certificate</dt>
          <dd>
            <CertificateExpiry silo={s} answeredAt={answeredAt} />
          </dd>
        </div>
        <div>
          <dt>Contact</dt>
          <dd className="wrap">{s.contact}</dd>
        </div>
        <div>
          <dt>Registered</dt>
          <dd>{formatTime(s.createdAt)}</dd>
        </div>
        <div>
          <dt>Silo id</dt>
          <dd className="mono wrap">{s.id}</dd>
        </div>
        <div>
          <dt>Privacy</dt>
          <dd>
            <Link to={`/privacy/silos/${s.id}`}>ε spent on its data, by study</Link>
          </dd>
        </div>
      </dl>

      <h2>Certificates</h2>
      {s.certificates.length === 0 ? (
        <EmptyState title="No certificate issued yet">
          The agent receives its first certificate when it enrolls with the bundle.
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Serial</th>
                <th scope="col">Status</th>
                <th scope="col">Valid</th>
                <th scope="col">Issued via</th>
                <th scope="col">Fingerprint (SHA-256)</th>
                {canAdminister ? <th scope="col">Actions</th> : null}
              </tr>
            </thead>
            <tbody>
              {s.certificates.map((c) => (
                <CertificateRow
                  key={c.serial}
                  c={c}
                  canAdminister={canAdminister}
                  onRevoke={() => open({ kind: 'revoke', serial: c.serial })}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}

      <ConfirmDialog
        open={pending?.kind === 'suspend'}
        title={`Suspend ${s.name}?`}
        confirmLabel="Suspend the silo"
        reasonLabel="Reason"
        busy={action.isPending}
        error={action.error}
        onCancel={() => setPending(null)}
        onConfirm={(reason) => pending && action.mutate({ p: pending, reason })}
      >
        <p>
          The hub refuses its agent on the very next request, and it cannot join new studies, until you resume it. The
          agent keeps its certificate: it waits, asking again with backoff, and carries on by itself once resumed.
        </p>
      </ConfirmDialog>
      <ConfirmDialog
        open={pending?.kind === 'resume'}
        title={`Resume ${s.name}?`}
        confirmLabel="Resume"
        tone="primary"
        busy={action.isPending}
        error={action.error}
        onCancel={() => setPending(null)}
        onConfirm={(reason) => pending && action.mutate({ p: pending, reason })}
      >
        <p>Its agent is admitted again with its current certificate, at its next request (within about 30 s).</p>
      </ConfirmDialog>
      <ConfirmDialog
        open={pending?.kind === 'reenroll'}
        title={`Issue a new enrollment bundle for ${s.name}?`}
        confirmLabel="Revoke certificates and issue"
        busy={action.isPending}
        error={action.error}
        onCancel={() => setPending(null)}
        onConfirm={(reason) => pending && action.mutate({ p: pending, reason })}
      >
        <p>
          Every certificate this silo holds is revoked at once and any unused bundle is withdrawn. Use it for a new
          machine, a lost key or a suspected compromise.
        </p>
      </ConfirmDialog>
      <ConfirmDialog
        open={pending?.kind === 'revoke'}
        title="Revoke this certificate?"
        confirmLabel="Revoke"
        reasonLabel="Reason"
        busy={action.isPending}
        error={action.error}
        onCancel={() => setPending(null)}
        onConfirm={(reason) => pending && action.mutate({ p: pending, reason })}
      >
        <p>
          Serial <span className="mono">{pending?.kind === 'revoke' ? pending.serial : ''}</span>. The agent is refused
          on its next request; it needs a new bundle to enroll again.
        </p>
      </ConfirmDialog>
    </section>
  );
}

function CertificateRow({
  c,
  canAdminister,
  onRevoke,
}: {
  c: CertificateView;
  canAdminister: boolean;
  onRevoke: () => void;
}) {
  const tone = c.status === 'active' ? 'success' : c.status === 'revoked' ? 'danger' : 'neutral';
  return (
    <tr>
      <td className="mono">{c.serial.slice(0, 16)}</td>
      <td>
        <Badge tone={tone} title={c.revocationReason ?? undefined}>
          {c.status}
        </Badge>
        {c.revokedAt ? <div className="muted small">{c.revocationReason}</div> : null}
      </td>
      <td>
        <span title={`${formatTime(c.notBefore)} – ${formatTime(c.notAfter)}`}>until {formatTime(c.notAfter)}</span>
        <div className="muted small">{formatRelative(c.notAfter)}</div>
      </td>
      <td>{c.issuedVia}</td>
      <td className="mono small" title={c.fingerprintSha256}>
        {c.fingerprintSha256.slice(0, 24)}…
      </td>
      {canAdminister ? (
        <td>
          {c.status !== 'revoked' ? (
            <button type="button" className="button button-small button-danger-outline" onClick={onRevoke}>
              Revoke
            </button>
          ) : null}
        </td>
      ) : null}
    </tr>
  );
}
