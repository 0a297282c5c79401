import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import type { DownloadedFile } from '../api/api-client.js';
import { ErrorMessage } from './feedback.js';

/** Copies `text`; says so for a moment (and to screen readers). */
export function CopyButton({ text, label = 'Copy', className }: { text: string; label?: string; className?: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  useEffect(() => {
    if (state === 'idle') return;
    const t = window.setTimeout(() => setState('idle'), 2500);
    return () => window.clearTimeout(t);
  }, [state]);
  async function copy() {
    try {
      await navigator.clipboard.writeText(text);
      setState('copied');
    } catch {
      // Clipboard API refused (insecure origin, permissions): the text stays selectable in its field.
      setState('failed');
    }
  }
  return (
    <button type="button" className={className ?? 'button button-secondary'} onClick={() => void copy()}>
      <span aria-live="polite">
        {state === 'copied' ? 'Copied' : state === 'failed' ? 'Copy failed: select the text' : label}
      </span>
    </button>
  );
}

/** Saves a downloaded file through a temporary object URL (the hub needs the bearer header, so no plain link). */
export function saveFile(file: DownloadedFile): void {
  const url = URL.createObjectURL(file.blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = file.fileName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A button that downloads through fetch and shows the hub's error if it refuses. */
export function DownloadButton({
  fetchFile,
  children,
  className = 'button button-secondary',
}: {
  fetchFile: () => Promise<DownloadedFile>;
  children: ReactNode;
  className?: string;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  async function run() {
    setBusy(true);
    setError(null);
    try {
      saveFile(await fetchFile());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return (
    <span className="download">
      <button type="button" className={className} onClick={() => void run()} disabled={busy} aria-busy={busy}>
        {busy ? 'Downloading…' : children}
      </button>
      {error ? <ErrorMessage error={error} /> : null}
    </span>
  );
}

/**
 * A confirmation step in a modal dialog (native <dialog>: focus moves in, Escape cancels, focus returns).
 * With `reasonLabel`, the person must give a reason (3–500 characters, as the hub requires).
 */
export function ConfirmDialog({
  open,
  title,
  children,
  confirmLabel,
  tone = 'danger',
  reasonLabel,
  busy,
  error,
  onConfirm,
  onCancel,
}: {
  open: boolean;
  title: string;
  children?: ReactNode;
  confirmLabel: string;
  tone?: 'danger' | 'primary';
  reasonLabel?: string;
  busy?: boolean;
  error?: unknown;
  onConfirm: (reason: string) => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState('');
  const titleId = useId();
  const reasonId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      setReason('');
      if (typeof dialog.showModal === 'function') dialog.showModal();
      else dialog.setAttribute('open', '');
    } else if (!open && dialog.open) {
      if (typeof dialog.close === 'function') dialog.close();
      else dialog.removeAttribute('open');
    }
  }, [open]);
  const reasonOk = !reasonLabel || (reason.trim().length >= 3 && reason.trim().length <= 500);
  function submit(e: FormEvent) {
    e.preventDefault();
    if (reasonOk && !busy) onConfirm(reason.trim());
  }
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        onCancel();
      }}
    >
      <form onSubmit={submit} className="dialog-body">
        <h2 id={titleId} className="dialog-title">
          {title}
        </h2>
        {children}
        {reasonLabel ? (
          <div className="field">
            <label htmlFor={reasonId}>{reasonLabel}</label>
            <textarea
              id={reasonId}
              value={reason}
              onChange={(e) => setReason(e.target.value)}
              rows={3}
              maxLength={500}
              required
              aria-describedby={`${reasonId}-hint`}
            />
            <p id={`${reasonId}-hint`} className="hint">
              Recorded in the audit trail. 3 to 500 characters.
            </p>
          </div>
        ) : null}
        {error ? <ErrorMessage error={error} /> : null}
        <div className="dialog-actions">
          <button type="button" className="button button-secondary" onClick={onCancel}>
            Cancel
          </button>
          <button
            type="submit"
            className={`button ${tone === 'danger' ? 'button-danger' : 'button-primary'}`}
            disabled={!reasonOk || busy}
            aria-busy={busy}
          >
            {busy ? 'Working…' : confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}
