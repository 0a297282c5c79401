import { useMutation } from '@tanstack/react-query';
import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import type { UserRole, UserView } from '@tessera/protocol';
import { useApi } from '../auth/session-context.js';
import { CopyButton } from '../ui/actions.js';
import { ErrorMessage } from '../ui/feedback.js';
import { temporaryPassword } from './temporary-password.js';

/** A temporary password to hand to its person, shown once. */
export interface HandOver {
  username: string;
  role: UserRole;
  password: string;
  why: 'added' | 'reset';
}

/** The hub's rules (CreateUserDto), checked here to answer at once. */
const USERNAME = /^[A-Za-z0-9._-]{3,64}$/;

export function usernameProblem(username: string): string | null {
  return USERNAME.test(username) ? null : 'Use 3 to 64 letters, digits, dots, dashes or underscores.';
}

export function AddPersonForm({ onAdded, onCancel }: { onAdded: (h: HandOver) => void; onCancel: () => void }) {
  const api = useApi();
  const id = useId();
  const [username, setUsername] = useState('');
  const [role, setRole] = useState<UserRole>('auditor');
  const [password] = useState(temporaryPassword);
  const [tried, setTried] = useState(false);
  const add = useMutation({
    mutationFn: () => api.createUser({ username: username.trim(), password, role, mustChangePassword: true }),
    onSuccess: (u) => onAdded({ username: u.username, role: u.role, password, why: 'added' }),
  });
  const problem = usernameProblem(username.trim());
  const show = (tried || username !== '') && problem;

  function submit(e: FormEvent) {
    e.preventDefault();
    setTried(true);
    if (!problem) add.mutate();
  }

  return (
    <form className="card" onSubmit={submit} aria-labelledby={`${id}-title`} noValidate>
      <h2 id={`${id}-title`}>Add a person</h2>
      <div className="grid-2">
        <div className="field">
          <label htmlFor={`${id}-username`}>Username</label>
          <input
            id={`${id}-username`}
            value={username}
            autoComplete="off"
            spellCheck={false}
            onChange={(e) => setUsername(e.target.value)}
            aria-invalid={show ? true : undefined}
            aria-describedby={`${id}-username-error ${id}-username-hint`}
            autoFocus
          />
          <p id={`${id}-username-hint`} className="hint">
            Unique whatever the letter case: “Alice” and “alice” are the same person.
          </p>
          <p id={`${id}-username-error`} className="field-error">
            {show || ''}
          </p>
        </div>
        <div className="field">
          <label htmlFor={`${id}-role`}>Role</label>
          <select id={`${id}-role`} value={role} onChange={(e) => setRole(e.target.value as UserRole)}>
            <option value="auditor">Auditor: reads everything, changes nothing</option>
            <option value="admin">Administrator: runs silos, studies and accounts</option>
          </select>
        </div>
      </div>
      <p className="hint">
        The hub gives them a temporary password (shown next, once). They choose their own at their first sign-in.
      </p>
      {add.isError ? <ErrorMessage error={add.error} title="The person was not added" /> : null}
      <div className="row row-end">
        <button type="button" className="button button-secondary" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="button button-primary" disabled={add.isPending} aria-busy={add.isPending}>
          {add.isPending ? 'Adding…' : 'Add and show the temporary password'}
        </button>
      </div>
    </form>
  );
}

/**
 * The temporary password, shown once: the hub keeps only its hash. Closing asks first, since nobody can see it
 * again (a new one can always be set).
 */
export function HandOverPanel({ handOver, onDone }: { handOver: HandOver; onDone: () => void }) {
  const id = useId();
  const [closing, setClosing] = useState(false);
  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>
        {handOver.why === 'added' ? 'Added' : 'New temporary password for'} {handOver.username}
      </h2>
      <div className="notice notice-warning" role="note">
        <strong>Shown once.</strong> Give this password to {handOver.username} in person or over a channel you trust. At
        their next sign-in they must choose their own; until then their account can do nothing else.
      </div>
      <div className="field">
        <label htmlFor={`${id}-password`}>Temporary password</label>
        <input
          id={`${id}-password`}
          className="mono"
          readOnly
          value={handOver.password}
          onFocus={(e) => e.currentTarget.select()}
        />
        <div className="row">
          <CopyButton text={handOver.password} label="Copy password" className="button button-secondary" />
        </div>
      </div>
      {closing ? (
        <div className="row row-end" role="group" aria-label="Close the temporary password">
          <span>The password will not be shown again.</span>
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
            I have handed it over
          </button>
        </div>
      )}
    </section>
  );
}

/** Sets a new temporary password for someone else: their sessions end, their next sign-in must change it. */
export function ResetPasswordDialog({ user, onClose }: { user: UserView; onClose: (h: HandOver | null) => void }) {
  const api = useApi();
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const [password] = useState(temporaryPassword);
  const reset = useMutation({
    mutationFn: () => api.resetPassword(user.id, password),
    onSuccess: (u) => onClose({ username: u.username, role: u.role, password, why: 'reset' }),
  });
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog || dialog.open) return;
    if (typeof dialog.showModal === 'function') dialog.showModal();
    else dialog.setAttribute('open', '');
    return () => {
      if (typeof dialog.close === 'function') dialog.close();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        onClose(null);
      }}
    >
      <form
        className="dialog-body"
        onSubmit={(e) => {
          e.preventDefault();
          reset.mutate();
        }}
      >
        <h2 id={titleId} className="dialog-title">
          Reset {user.username}’s password?
        </h2>
        <p>
          The hub sets a new temporary password, shown to you once. {user.username} is signed out everywhere at once and
          must choose a new password at the next sign-in. Their old password stops working.
        </p>
        {reset.isError ? <ErrorMessage error={reset.error} /> : null}
        <div className="dialog-actions">
          <button type="button" className="button button-secondary" onClick={() => onClose(null)}>
            Cancel
          </button>
          <button type="submit" className="button button-danger" disabled={reset.isPending} aria-busy={reset.isPending}>
            {reset.isPending ? 'Resetting…' : 'Reset password'}
          </button>
        </div>
      </form>
    </dialog>
  );
}
