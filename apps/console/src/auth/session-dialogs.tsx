import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { ErrorMessage } from '../ui/feedback.js';
import { useSession } from './session-context.js';
import { formatCountdown, type SessionWarning } from './session-timing.js';

/** Re-renders every second while mounted; returns the time. */
function useNow(): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(t);
  }, []);
  return now;
}

/**
 * The warning before the session ends: for inactivity (with "Stay signed in"), or at its fixed end (save now).
 * Either way, what is on the page stays there: the console asks for the password and carries on.
 */
export function SessionWarningBanner({ warning }: { warning: SessionWarning }) {
  const { staySignedIn } = useSession();
  const now = useNow();
  const left = formatCountdown(warning.at - now);
  return (
    <div className="notice notice-warning session-warning" role="alert" aria-live="assertive">
      {warning.kind === 'idle' ? (
        <>
          <p className="notice-message">
            <strong>Still there?</strong> You will be signed out for inactivity in {left}.
          </p>
          <p className="notice-guidance">
            Anything you have not saved stays on this page, and you can carry on after entering your password again.
          </p>
          <div className="row">
            <button type="button" className="button button-primary" onClick={() => void staySignedIn()}>
              Stay signed in
            </button>
          </div>
        </>
      ) : (
        <>
          <p className="notice-message">
            <strong>Your session ends in {left}</strong> (its time limit since you signed in).
          </p>
          <p className="notice-guidance">
            Save what you are writing now. The page stays as it is; you will be asked for your password again.
          </p>
        </>
      )}
    </div>
  );
}

/**
 * Asks for the password again after the session lapsed, over the page (which stays mounted but hidden, so a
 * half-written form survives). Signing in as someone else drops the page.
 */
export function ReauthenticateDialog({ username, reason }: { username: string; reason: string }) {
  const { signIn, signOut } = useSession();
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const passwordId = useId();
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog || dialog.open) return;
    if (typeof dialog.showModal === 'function') dialog.showModal();
    else dialog.setAttribute('open', '');
  }, []);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(username, password);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={titleId}
      // Escape must not reveal the hidden page without a session.
      onCancel={(e) => e.preventDefault()}
    >
      <form className="dialog-body" onSubmit={(e) => void submit(e)}>
        <h2 id={titleId} className="dialog-title">
          Sign in again
        </h2>
        <p>{reason}</p>
        <p className="muted">
          Signed in as <strong>{username}</strong>.
        </p>
        <div className="field">
          <label htmlFor={passwordId}>Password</label>
          <input
            id={passwordId}
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
            autoFocus
          />
        </div>
        {error ? <ErrorMessage error={error} title="Sign-in failed" /> : null}
        <div className="dialog-actions">
          <button type="button" className="button button-secondary" onClick={() => signOut()}>
            Sign in as someone else
          </button>
          <button type="submit" className="button button-primary" disabled={busy || password === ''} aria-busy={busy}>
            {busy ? 'Signing in…' : 'Sign in and carry on'}
          </button>
        </div>
      </form>
    </dialog>
  );
}
