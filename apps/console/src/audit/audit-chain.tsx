import { useQuery } from '@tanstack/react-query';
import { useApi } from '../auth/session-context.js';
import { DownloadButton } from '../ui/actions.js';
import { Badge, ErrorMessage, Loading } from '../ui/feedback.js';
import { formatAuditTime, type AuditZone } from './audit-time.js';

/** The stored chain's verification, and the hub's audit keys with their fingerprints and a PEM download. */
export function ChainStatus({ zone }: { zone: AuditZone }) {
  const api = useApi();
  const verify = useQuery({ queryKey: ['audit-verify'], queryFn: () => api.verifyAudit(), staleTime: 30_000 });
  return (
    <section className="card chain" aria-labelledby="chain-title">
      <div className="row row-between">
        <h2 id="chain-title">Chain verification</h2>
        <button
          type="button"
          className="button button-secondary"
          onClick={() => void verify.refetch()}
          disabled={verify.isFetching}
        >
          {verify.isFetching ? 'Verifying…' : 'Verify again'}
        </button>
      </div>
      {verify.isPending ? (
        <Loading label="Verifying the whole chain…" />
      ) : verify.isError ? (
        <ErrorMessage error={verify.error} title="The chain could not be verified" />
      ) : (
        <div className="chain-result" role="status">
          {verify.data.ok ? <Badge tone="success">✓ intact</Badge> : <Badge tone="danger">✗ broken</Badge>}{' '}
          {verify.data.records} records up to #{verify.data.headSeq}; {verify.data.checkpoints.verified} of{' '}
          {verify.data.checkpoints.total} signed checkpoints verified · {formatAuditTime(verify.data.verifiedAt, zone)}
          {verify.data.firstBroken ? (
            <p className="danger-text">
              First break at #{verify.data.firstBroken.seq}: {verify.data.firstBroken.message}
            </p>
          ) : null}
          {verify.data.headHash ? (
            <p className="muted small">
              Head hash <span className="mono wrap">{verify.data.headHash}</span>
            </p>
          ) : null}
        </div>
      )}
      <HubKeys zone={zone} />
    </section>
  );
}

/** Every audit signing key of the hub with its fingerprint; the current one downloads as hub-public.pem. */
function HubKeys({ zone }: { zone: AuditZone }) {
  const api = useApi();
  const keys = useQuery({ queryKey: ['audit-keys'], queryFn: () => api.auditPublicKeys(), staleTime: 5 * 60_000 });
  return (
    <div className="hub-keys">
      <h3>Hub audit key</h3>
      {keys.isPending ? (
        <Loading label="Reading the hub's keys…" />
      ) : keys.isError ? (
        <ErrorMessage error={keys.error} title="The hub's keys could not be read" />
      ) : (
        <ul>
          {keys.data.map((k) => (
            <li key={k.keyId}>
              {k.current ? <Badge tone="success">signs now</Badge> : <Badge tone="neutral">earlier key</Badge>} Ed25519,
              made {formatAuditTime(k.createdAt, zone)}. Fingerprint (SHA-256){' '}
              <span className="mono wrap" data-testid="key-fingerprint">
                {k.keyId}
              </span>
            </li>
          ))}
        </ul>
      )}
      <div className="row report-actions">
        <DownloadButton fetchFile={() => api.auditPublicKeyPem()}>Download hub public key (PEM)</DownloadButton>
      </div>
      <p className="muted small">
        Save it as hub-public.pem and pin it when verifying reports offline:{' '}
        <span className="mono wrap">npx tessera-verify report.json --public-key hub-public.pem</span>. Check the
        fingerprint with someone you trust at the hub (
        <span className="mono wrap">openssl pkey -pubin -in hub-public.pem -outform DER | sha256sum</span>).
      </p>
    </div>
  );
}
