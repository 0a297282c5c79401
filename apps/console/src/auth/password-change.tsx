import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { ErrorMessage, Notice } from '../ui/feedback.js';
import { usePageTitle } from '../ui/page-title.js';
import { useSession } from './session-context.js';

/** The hub's rule (account-rules.util.ts), checked here to answer at once. */
export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 256;

/** What is wrong with the new password and its confirmation, field by field. */
export function newPasswordProblems(
  current: string,
  next: string,
  confirm: string,
): { next: string | null; confirm: string | null } {
  let nextProblem: string | null = null;
  if (next.length < MIN_PASSWORD_LENGTH || next.length > MAX_PASSWORD_LENGTH) {
    nextProblem = `Use ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters; a few words make a good one.`;
  } else if (next === current) {
    nextProblem = 'The new password must differ from the current one.';
  }
  return { next: nextProblem, confirm: confirm === next ? null : 'The two new passwords differ.' };
}

/**
 * Current password, new password twice. The hub ends every session of the account (other browsers included) and
 * answers a new one for this browser, which the console adopts in all its tabs.
 */
export function ChangePasswordForm({
  currentLabel = 'Current password',
  onDone,
  onCancel,
}: {
  currentLabel?: string;
  onDone: () => void;
  onCancel?: () => void;
}) {
  const { changePassword } = useSession();
  const ids = { current: useId(), next: useId(), confirm: useId() };
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [confirm, setConfirm] = useState('');
  const [tried, setTried] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const problems = newPasswordProblems(current, next, confirm);
  const show = {
    next: (tried || next !== '') && problems.next,
    confirm: (tried || confirm !== '') && problems.confirm,
  };

  async function submit(e: FormEvent) {
    e.preventDefault();
    setTried(true);
    if (current === '' || problems.next || problems.confirm) return;
    setBusy(true);
    setError(null);
    try {
      await changePassword(current, next);
      onDone();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  return (
    <form className="password-form" onSubmit={(e) => void submit(e)} noValidate>
      <div className="field">
        <label htmlFor={ids.current}>{currentLabel}</label>
        <input
          id={ids.current}
          type="password"
          autoComplete="current-password"
          value={current}
          onChange={(e) => setCurrent(e.target.value)}
          aria-invalid={tried && current === '' ? true : undefined}
          autoFocus
        />
      </div>
      <div className="field">
        <label htmlFor={ids.next}>New password</label>
        <input
          id={ids.next}
          type="password"
          autoComplete="new-password"
          value={next}
          onChange={(e) => setNext(e.target.value)}
          aria-invalid={show.next ? true : undefined}
          aria-describedby={`${ids.next}-error`}
        />
        <p id={`${ids.next}-error`} className="field-error">
          {show.next || ''}
        </p>
      </div>
      <div className="field">
        <label htmlFor={ids.confirm}>New password, again</label>
        <input
          id={ids.confirm}
          type="password"
          autoComplete="new-password"
          value={confirm}
          onChange={(e) => setConfirm(e.target.value)}
          aria-invalid={show.confirm ? true : undefined}
          aria-describedby={`${ids.confirm}-error`}
        />
        <p id={`${ids.confirm}-error`} className="field-error">
          {show.confirm || ''}
        </p>
      </div>
      {error ? <ErrorMessage error={error} title="The password was not changed" /> : null}
      <div className="dialog-actions">
        {onCancel ? (
          <button type="button" className="button button-secondary" onClick={onCancel}>
            Cancel
          </button>
        ) : null}
        <button type="submit" className="button button-primary" disabled={busy} aria-busy={busy}>
          {busy ? 'Changing…' : 'Change password'}
        </button>
      </div>
    </form>
  );
}

/** "Change password" from the user menu, in a modal dialog. */
export function ChangePasswordDialog({ open, onClose }: { open: boolean; onClose: (changed: boolean) => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      if (typeof dialog.showModal === 'function') dialog.showModal();
      else dialog.setAttribute('open', '');
    } else if (!open && dialog.open) {
      if (typeof dialog.close === 'function') dialog.close();
      else dialog.removeAttribute('open');
    }
  }, [open]);
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        onClose(false);
      }}
    >
      {open ? (
        <div className="dialog-body">
          <h2 id={titleId} className="dialog-title">
            Change your password
          </h2>
          <p className="muted">Every other session of your account ends: other browsers will have to sign in again.</p>
          <ChangePasswordForm onDone={() => onClose(true)} onCancel={() => onClose(false)} />
        </div>
      ) : null}
    </dialog>
  );
}

/** Instead of every page while the password is temporary: the hub serves nothing else until it is changed. */
export function ForcedPasswordChange() {
  usePageTitle('Choose your password');
  const { session, signOut } = useSession();
  return (
    <section className="page page-narrow" aria-labelledby="forced-password-title">
      <h1 id="forced-password-title">Choose your password</h1>
      <Notice tone="info">
        {session?.username ? <strong>{session.username}</strong> : 'You'} signed in with a temporary password from an
        administrator. Choose a password of your own to continue; nobody else will know it.
      </Notice>
      <div className="card">
        <ChangePasswordForm currentLabel="Temporary password" onDone={() => undefined} />
      </div>
      <p>
        <button type="button" className="button button-ghost" onClick={() => signOut()}>
          Sign out instead
        </button>
      </p>
    </section>
  );
}
