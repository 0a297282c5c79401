import type { ReactNode } from 'react';
import { ApiError } from '../api/api-error.js';

/**
 * An error as the person needs it: the hub's message, what to do about it (chosen by the error's code, never by its
 * HTTP status alone), its problems, and the correlation id to quote.
 */
export function ErrorMessage({ error, title }: { error: unknown; title?: string }) {
  const api = error instanceof ApiError ? error : null;
  const message = error instanceof Error ? error.message : String(error);
  const guidance = api?.guidance() ?? null;
  const lines = api?.detailLines() ?? [];
  return (
    <div className="notice notice-error" role="alert">
      {title ? <strong className="notice-title">{title}</strong> : null}
      <p className="notice-message">{message}</p>
      {guidance ? <p className="notice-guidance">{guidance}</p> : null}
      {lines.length > 0 ? (
        <ul className="notice-details">
          {lines.map((l) => (
            <li key={l}>{l}</li>
          ))}
        </ul>
      ) : null}
      {api?.correlationId ? <p className="notice-meta">Correlation id: {api.correlationId}</p> : null}
    </div>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      {label}
    </p>
  );
}

export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <p className="empty-title">{title}</p>
      {children ? <div className="empty-body">{children}</div> : null}
    </div>
  );
}

export type Tone = 'neutral' | 'info' | 'success' | 'warning' | 'danger';

export function Badge({ tone = 'neutral', children, title }: { tone?: Tone; children: ReactNode; title?: string }) {
  return (
    <span className={`badge badge-${tone}`} title={title}>
      {children}
    </span>
  );
}

export function Notice({ tone = 'info', children }: { tone?: Tone; children: ReactNode }) {
  return <div className={`notice notice-${tone}`}>{children}</div>;
}
