import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { useApi } from '../auth/session-context.js';
import { formatTime } from '../lib/format.js';
import { ConfirmDialog } from '../ui/actions.js';
import { Badge, EmptyState, ErrorMessage, Loading, type Tone } from '../ui/feedback.js';
import { usePageTitle } from '../ui/page-title.js';
import { AddEndpointForm, SecretPanel } from './webhook-forms.js';
import { webhooksApi, type CreatedWebhook, type WebhookDelivery, type WebhookEndpoint } from './webhooks-api.js';

const STATUS_TONE: Record<WebhookDelivery['status'], Tone> = {
  pending: 'warning',
  delivering: 'info',
  delivered: 'success',
  failed: 'danger',
};

/**
 * Administrators choose who hears about study events: endpoints that receive signed webhooks (a study awaiting
 * approvals, a steward's decision, a failed round or study, a reached privacy budget...), a test event per endpoint,
 * and the delivery log with every attempt.
 */
export function NotificationsPage() {
  usePageTitle('Notifications');
  const api = useApi();
  const hooks = useMemo(() => webhooksApi(api), [api]);
  const queryClient = useQueryClient();
  const endpoints = useQuery({ queryKey: ['webhooks'], queryFn: () => hooks.list(), refetchInterval: 5_000 });
  const [adding, setAdding] = useState(false);
  const [created, setCreated] = useState<CreatedWebhook | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<WebhookEndpoint | null>(null);
  const refresh = () => void queryClient.invalidateQueries({ queryKey: ['webhooks'] });

  const toggle = useMutation({
    mutationFn: (e: WebhookEndpoint) => hooks.setEnabled(e.id, !e.enabled),
    onSuccess: refresh,
  });
  const test = useMutation({
    mutationFn: (e: WebhookEndpoint) => hooks.sendTest(e.id),
    onSuccess: (_d, e) => {
      setSelected(e.id);
      refresh();
      void queryClient.invalidateQueries({ queryKey: ['webhook-deliveries', e.id] });
    },
  });
  const remove = useMutation({
    mutationFn: (e: WebhookEndpoint) => hooks.remove(e.id),
    onSuccess: (_d, e) => {
      setDeleting(null);
      if (selected === e.id) setSelected(null);
      refresh();
    },
  });

  return (
    <section className="page" aria-labelledby="notifications-title">
      <div className="page-head">
        <h1 id="notifications-title">Notifications</h1>
        {!adding && !created ? (
          <button type="button" className="button button-primary" onClick={() => setAdding(true)}>
            Add an endpoint
          </button>
        ) : null}
      </div>
      <p className="lead">
        The hub POSTs study events to these URLs, signed with each endpoint’s secret, and retries a failed delivery with
        growing waits (8 attempts over 10 to 21 minutes with the default settings) before it gives up. Payloads name
        studies, silos and states; never metrics, never anything from a silo’s data.
      </p>
      {created ? <SecretPanel created={created} onDone={() => setCreated(null)} /> : null}
      {adding ? (
        <AddEndpointForm
          onCancel={() => setAdding(false)}
          onAdded={(c) => {
            setAdding(false);
            setCreated(c);
            refresh();
          }}
        />
      ) : null}
      {toggle.isError ? <ErrorMessage error={toggle.error} title="The endpoint was not changed" /> : null}
      {test.isError ? <ErrorMessage error={test.error} title="The test event was not sent" /> : null}
      {endpoints.isPending ? (
        <Loading label="Loading endpoints…" />
      ) : endpoints.isError ? (
        <ErrorMessage error={endpoints.error} title="The endpoints could not be loaded" />
      ) : endpoints.data.length === 0 ? (
        <EmptyState title="No endpoint yet">
          <p>Add one to hear when a study awaits approvals, a round fails or a study ends.</p>
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <caption className="visually-hidden">Webhook endpoints</caption>
            <thead>
              <tr>
                <th scope="col">Endpoint</th>
                <th scope="col">Events</th>
                <th scope="col">Status</th>
                <th scope="col">Queued</th>
                <th scope="col">Failed</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {endpoints.data.map((e) => (
                <tr key={e.id} aria-selected={selected === e.id ? true : undefined}>
                  <th scope="row">
                    <span className="mono">{e.url}</span>
                    {e.description ? <div className="muted small">{e.description}</div> : null}
                  </th>
                  <td className="small">{e.events.join(', ')}</td>
                  <td>{e.enabled ? <Badge tone="success">Enabled</Badge> : <Badge>Disabled</Badge>}</td>
                  <td>{e.pending}</td>
                  <td>{e.failed > 0 ? <Badge tone="danger">{e.failed}</Badge> : 0}</td>
                  <td>
                    <div className="row row-end">
                      <button type="button" className="button button-secondary" onClick={() => setSelected(e.id)}>
                        Delivery log
                      </button>
                      <button
                        type="button"
                        className="button button-secondary"
                        disabled={!e.enabled || test.isPending}
                        title={e.enabled ? undefined : 'Enable the endpoint first'}
                        onClick={() => test.mutate(e)}
                      >
                        Send test event
                      </button>
                      <button
                        type="button"
                        className="button button-secondary"
                        disabled={toggle.isPending}
                        onClick={() => toggle.mutate(e)}
                      >
                        {e.enabled ? 'Disable' : 'Enable'}
                      </button>
                      <button type="button" className="button button-danger" onClick={() => setDeleting(e)}>
                        Delete
                      </button>
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {selected ? (
        <DeliveryLog endpoint={endpoints.data?.find((e) => e.id === selected) ?? null} endpointId={selected} />
      ) : null}
      <ConfirmDialog
        open={deleting !== null}
        title="Delete this endpoint?"
        confirmLabel="Delete endpoint"
        busy={remove.isPending}
        error={remove.error}
        onConfirm={() => deleting && remove.mutate(deleting)}
        onCancel={() => setDeleting(null)}
      >
        <p>
          {deleting?.url} stops receiving events at once; its queued deliveries and its delivery log are deleted with
          it. The audit log keeps the record of its creation and deletion.
        </p>
      </ConfirmDialog>
    </section>
  );
}

function DeliveryLog({ endpoint, endpointId }: { endpoint: WebhookEndpoint | null; endpointId: string }) {
  const api = useApi();
  const hooks = useMemo(() => webhooksApi(api), [api]);
  const deliveries = useQuery({
    queryKey: ['webhook-deliveries', endpointId],
    queryFn: () => hooks.deliveries(endpointId),
    refetchInterval: 3_000,
  });
  return (
    <section className="card" aria-labelledby="delivery-log-title">
      <h2 id="delivery-log-title">Delivery log{endpoint ? ` of ${endpoint.url}` : ''}</h2>
      {deliveries.isPending ? (
        <Loading label="Loading deliveries…" />
      ) : deliveries.isError ? (
        <ErrorMessage error={deliveries.error} title="The delivery log could not be loaded" />
      ) : deliveries.data.length === 0 ? (
        <EmptyState title="Nothing sent yet" />
      ) : (
        <div className="table-wrap">
          <table className="table">
            <caption className="visually-hidden">Latest 50 deliveries, newest first, with every attempt</caption>
            <thead>
              <tr>
                <th scope="col">Queued</th>
                <th scope="col">Event</th>
                <th scope="col">Status</th>
                <th scope="col">Attempts</th>
              </tr>
            </thead>
            <tbody>
              {deliveries.data.map((d) => (
                <tr key={d.id}>
                  <td>{formatTime(d.createdAt)}</td>
                  <td>
                    <code>{d.eventType}</code>
                    <div className="muted small mono">{d.id}</div>
                  </td>
                  <td>
                    <Badge tone={STATUS_TONE[d.status]}>{d.status}</Badge>
                    {d.nextAttemptAt && d.attempts > 0 ? (
                      <div className="muted small">next try {formatTime(d.nextAttemptAt)}</div>
                    ) : null}
                  </td>
                  <td>
                    {d.log.length === 0 ? (
                      <span className="muted">not tried yet</span>
                    ) : (
                      <ol className="small">
                        {d.log.map((a) => (
                          <li key={a.attempt}>
                            {formatTime(a.at)} · {a.statusCode === null ? 'no answer' : `HTTP ${a.statusCode}`} ·{' '}
                            {a.durationMs} ms{a.error ? ` · ${a.error}` : ''}
                          </li>
                        ))}
                      </ol>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
