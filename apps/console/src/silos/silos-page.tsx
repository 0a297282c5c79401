import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import type { EnrollmentIssuedView } from '@tessera/protocol';
import { useApi, useCanAdminister } from '../auth/session-context.js';
import { EmptyState, ErrorMessage, Loading } from '../ui/feedback.js';
import { usePageTitle } from '../ui/page-title.js';
import { ListFilters } from '../ui/list-filters.js';
import { EnrollmentBundlePanel } from './enrollment-bundle-panel.js';
import { filterSilos, SILO_STATUS_FILTERS, type SiloStatusFilter } from './silo-filter.js';
import { AgentSoftwareLabel, CertificateExpiry, SiloConnectivity, SiloStatusBadge } from './silo-status.js';

export function SilosPage() {
  usePageTitle('Silos');
  const api = useApi();
  const canAdminister = useCanAdminister();
  // Every 5 s: an agent that dies shows offline within its long-poll interval, not at the next slow refresh.
  const silos = useQuery({ queryKey: ['silos'], queryFn: () => api.silos(), refetchInterval: 5_000 });
  const answeredAt = silos.dataUpdatedAt;
  const [issued, setIssued] = useState<EnrollmentIssuedView | null>(null);
  const [registering, setRegistering] = useState(false);
  const [query, setQuery] = useState('');
  const [status, setStatus] = useState<SiloStatusFilter>('all');
  const shown = silos.data ? filterSilos(silos.data, query, status) : [];

  return (
    <section className="page" aria-labelledby="silos-title">
      <div className="page-head">
        <h1 id="silos-title">Silos</h1>
        {canAdminister && !registering && !issued ? (
          <button type="button" className="button button-primary" onClick={() => setRegistering(true)}>
            Register a silo
          </button>
        ) : null}
      </div>
      <p className="lead">
        Each hospital runs an agent next to its data. It enrolls once with a one-time bundle, then talks to the hub over
        mutual TLS only.
      </p>
      {issued ? <EnrollmentBundlePanel issued={issued} onDone={() => setIssued(null)} /> : null}
      {registering ? (
        <RegisterSiloForm
          onCancel={() => setRegistering(false)}
          onIssued={(x) => {
            setRegistering(false);
            setIssued(x);
          }}
        />
      ) : null}
      {silos.isPending ? (
        <Loading label="Loading silos…" />
      ) : silos.isError ? (
        <ErrorMessage error={silos.error} title="The silos could not be loaded" />
      ) : silos.data.length === 0 ? (
        <EmptyState title="No silo yet">
          {canAdminister
            ? 'Register the first hospital to get its enrollment bundle.'
            : 'An administrator registers silos.'}
        </EmptyState>
      ) : (
        <>
          <ListFilters
            noun="silos"
            query={query}
            onQuery={setQuery}
            placeholder="name, contact, id or agent version"
            status={status}
            onStatus={setStatus}
            statuses={SILO_STATUS_FILTERS}
          />
          <p className="hint" role="status">
            {shown.length === silos.data.length
              ? `${silos.data.length} silo${silos.data.length === 1 ? '' : 's'}`
              : `${shown.length} of ${silos.data.length} silos match`}
          </p>
          {shown.length === 0 ? (
            <EmptyState title="No silo matches">Change the search or the status.</EmptyState>
          ) : (
            <div className="table-wrap">
              <table className="table">
                <caption className="visually-hidden">Registered silos</caption>
                <thead>
                  <tr>
                    <th scope="col">Silo</th>
                    <th scope="col">Status</th>
                    <th scope="col">Agent</th>
                    <th scope="col">Version</th>
                    <th scope="col">Certificate</th>
                    <th scope="col">Contact</th>
                  </tr>
                </thead>
                <tbody>
                  {shown.map((s) => (
                    <tr key={s.id}>
                      <th scope="row">
                        <Link to={`/silos/${s.id}`}>{s.name}</Link>
                      </th>
                      <td>
                        <SiloStatusBadge silo={s} answeredAt={answeredAt} />
                      </td>
                      <td>
                        <SiloConnectivity silo={s} answeredAt={answeredAt} />
                      </td>
                      <td>
                        <AgentSoftwareLabel silo={s} />
                      </td>
                      <td>
                        <CertificateExpiry silo={s} answeredAt={answeredAt} />
                      </td>
                      <td className="wrap">{s.contact}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </section>
  );
}

const NAME_PATTERN = /^[\p{L}\p{N} .,'()&/-]+$/u;

function RegisterSiloForm({
  onIssued,
  onCancel,
}: {
  onIssued: (x: EnrollmentIssuedView) => void;
  onCancel: () => void;
}) {
  const api = useApi();
  const queryClient = useQueryClient();
  const [name, setName] = useState('');
  const [contact, setContact] = useState('');
  const [tried, setTried] = useState(false);
  const register = useMutation({
    mutationFn: () => api.registerSilo({ name: name.trim(), contact: contact.trim() }),
    onSuccess: (x) => {
      void queryClient.invalidateQueries({ queryKey: ['silos'] });
      onIssued(x);
    },
  });
  // The same rules as the hub's RegisterSiloDto, checked here to answer at once.
  const nameProblem =
    name.trim().length < 2 || name.trim().length > 128
      ? 'The name must be 2 to 128 characters long.'
      : !NAME_PATTERN.test(name.trim())
        ? "The name may contain letters, digits, spaces and . , ' ( ) & / -"
        : null;
  const contactProblem =
    contact.trim().length < 3 || contact.trim().length > 256 ? 'Give a contact of 3 to 256 characters.' : null;

  function submit(e: FormEvent) {
    e.preventDefault();
    setTried(true);
    if (nameProblem || contactProblem) return;
    register.mutate();
  }
  const showName = (tried || name !== '') && nameProblem;
  const showContact = (tried || contact !== '') && contactProblem;
  return (
    <form className="card" onSubmit={submit} aria-labelledby="register-title" noValidate>
      <h2 id="register-title">Register a silo</h2>
      <div className="grid-2">
        <div className="field">
          <label htmlFor="silo-name">Hospital name</label>
          <input
            id="silo-name"
            value={name}
            onChange={(e) => setName(e.target.value)}
            aria-invalid={showName ? true : undefined}
            aria-describedby="silo-name-error"
            autoFocus
          />
          <p id="silo-name-error" className="field-error">
            {showName || ''}
          </p>
        </div>
        <div className="field">
          <label htmlFor="silo-contact">IT contact</label>
          <input
            id="silo-contact"
            value={contact}
            placeholder="it-security@hospital.example, +1 555 0100"
            onChange={(e) => setContact(e.target.value)}
            aria-invalid={showContact ? true : undefined}
            aria-describedby="silo-contact-error"
          />
          <p id="silo-contact-error" className="field-error">
            {showContact || ''}
          </p>
        </div>
      </div>
      {register.isError ? <ErrorMessage error={register.error} title="The silo was not registered" /> : null}
      <div className="row row-end">
        <button type="button" className="button button-secondary" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="button button-primary" disabled={register.isPending}>
          {register.isPending ? 'Registering…' : 'Register and issue the bundle'}
        </button>
      </div>
    </form>
  );
}
