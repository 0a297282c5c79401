import { useMutation, useQuery } from '@tanstack/react-query';
import { useId, useMemo, useState, type FormEvent } from 'react';
import { useApi } from '../auth/session-context.js';
import { CopyButton } from '../ui/actions.js';
import { ErrorMessage, Loading } from '../ui/feedback.js';
import { EVENT_LABELS, webhooksApi, type CreatedWebhook } from './webhooks-api.js';

/** The hub decides (https, or http://127.0.0.1 when the operator allows it); this only answers obvious typos at once. */
export function endpointUrlProblem(url: string): string | null {
  if (url === '') return 'Enter the URL the hub should POST events to.';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'Enter a whole URL, starting with https://';
  }
  if (parsed.protocol === 'https:' || (parsed.protocol === 'http:' && parsed.hostname === '127.0.0.1')) return null;
  return 'The URL must start with https:// (plain http only to 127.0.0.1, when the hub allows it).';
}

export function AddEndpointForm({ onAdded, onCancel }: { onAdded: (c: CreatedWebhook) => void; onCancel: () => void }) {
  const api = useApi();
  const hooks = useMemo(() => webhooksApi(api), [api]);
  const id = useId();
  const types = useQuery({ queryKey: ['webhook-event-types'], queryFn: () => hooks.eventTypes() });
  const [url, setUrl] = useState('');
  const [description, setDescription] = useState('');
  const [events, setEvents] = useState<string[]>(['study.submitted', 'study.failed', 'privacy.budget_reached']);
  const [tried, setTried] = useState(false);
  const add = useMutation({
    mutationFn: () => hooks.create({ url: url.trim(), events, description: description.trim() }),
    onSuccess: onAdded,
  });
  const urlProblem = endpointUrlProblem(url.trim());
  const eventsProblem = events.length === 0 ? 'Choose at least one event.' : null;

  function submit(e: FormEvent) {
    e.preventDefault();
    setTried(true);
    if (!urlProblem && !eventsProblem) add.mutate();
  }

  function toggle(type: string, on: boolean) {
    setEvents((current) => (on ? [...current, type] : current.filter((t) => t !== type)));
  }

  return (
    <form className="card" onSubmit={submit} aria-labelledby={`${id}-title`} noValidate>
      <h2 id={`${id}-title`}>Add an endpoint</h2>
      <div className="grid-2">
        <div className="field">
          <label htmlFor={`${id}-url`}>URL</label>
          <input
            id={`${id}-url`}
            value={url}
            className="mono"
            inputMode="url"
            spellCheck={false}
            autoComplete="off"
            placeholder="https://alerts.example.org/tessera"
            onChange={(e) => setUrl(e.target.value)}
            aria-invalid={tried && urlProblem ? true : undefined}
            aria-describedby={`${id}-url-error`}
            autoFocus
          />
          <p id={`${id}-url-error`} className="field-error">
            {tried ? urlProblem || '' : ''}
          </p>
        </div>
        <div className="field">
          <label htmlFor={`${id}-description`}>Description (optional)</label>
          <input
            id={`${id}-description`}
            value={description}
            maxLength={200}
            onChange={(e) => setDescription(e.target.value)}
          />
        </div>
      </div>
      <fieldset className="group">
        <legend>Events</legend>
        {types.isPending ? (
          <Loading label="Loading the events…" />
        ) : types.isError ? (
          <ErrorMessage error={types.error} title="The events could not be loaded" />
        ) : (
          types.data.eventTypes.map((type) => (
            <div key={type} className="field field-check">
              <input
                id={`${id}-event-${type}`}
                type="checkbox"
                checked={events.includes(type)}
                onChange={(e) => toggle(type, e.target.checked)}
              />
              <label htmlFor={`${id}-event-${type}`}>
                {EVENT_LABELS[type] ?? type} <code className="muted small">{type}</code>
              </label>
            </div>
          ))
        )}
        <p className="field-error">{tried ? eventsProblem || '' : ''}</p>
      </fieldset>
      <p className="hint">
        Payloads carry ids and states only: never metrics or anything from a silo’s data. The hub signs each request
        with a secret it shows next, once.
      </p>
      {add.isError ? <ErrorMessage error={add.error} title="The endpoint was not added" /> : null}
      <div className="row row-end">
        <button type="button" className="button button-secondary" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="button button-primary" disabled={add.isPending} aria-busy={add.isPending}>
          {add.isPending ? 'Adding…' : 'Add and show the secret'}
        </button>
      </div>
    </form>
  );
}

/** The signing secret, shown once: closing asks first, since no page shows it again. */
export function SecretPanel({ created, onDone }: { created: CreatedWebhook; onDone: () => void }) {
  const id = useId();
  const [closing, setClosing] = useState(false);
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Signing secret for {created.endpoint.url}</h2>
      <div className="notice notice-warning" role="note">
        <strong>Shown once.</strong> Store it with the receiver: it checks the <code>Tessera-Webhook-Signature</code>{' '}
        header of every request with it (operator guide, “Notifications”). To change it, delete the endpoint and add it
        again.
      </div>
      <div className="field">
        <label htmlFor={`${id}-secret`}>Secret</label>
        <input
          id={`${id}-secret`}
          className="mono"
          readOnly
          value={created.secret}
          onFocus={(e) => e.currentTarget.select()}
        />
        <div className="row">
          <CopyButton text={created.secret} label="Copy secret" className="button button-secondary" />
        </div>
      </div>
      {closing ? (
        <div className="row row-end" role="group" aria-label="Close the secret">
          <span>The secret will not be shown again.</span>
          <button type="button" className="button button-secondary" onClick={() => setClosing(false)}>
            Keep it on screen
          </button>
          <button type="button" className="button button-primary" onClick={onDone}>
            Close it
          </button>
        </div>
      ) : (
        <div className="row row-end">
          <button type="button" className="button button-primary" onClick={() => setClosing(true)}>
            I have stored it
          </button>
        </div>
      )}
    </section>
  );
}
