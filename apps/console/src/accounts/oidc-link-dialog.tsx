import { useMutation } from '@tanstack/react-query';
import { useEffect, useId, useRef, useState } from 'react';
import type { UserView } from '@tessera/protocol';
import { useApi } from '../auth/session-context.js';
import { ErrorMessage } from '../ui/feedback.js';

/**
 * Links an account to the person's identity at the hospital's identity provider (OIDC, ADR 0010): its `sub`, which
 * the provider's administrators can look up, and which a refused sign-in records in the audit log. A linked account
 * can also be unlinked here, after which it signs in with its password only.
 */
export function OidcLinkDialog({
  user,
  providerName,
  onClose,
}: {
  user: UserView;
  providerName: string;
  onClose: (changed: boolean) => void;
}) {
  const api = useApi();
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const subjectId = useId();
  const [subject, setSubject] = useState(user.oidcIdentity?.subject ?? '');
  const link = useMutation({
    mutationFn: () => api.linkOidcIdentity(user.id, subject.trim()),
    onSuccess: () => onClose(true),
  });
  const unlink = useMutation({
    mutationFn: () => api.unlinkOidcIdentity(user.id),
    onSuccess: () => onClose(true),
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
  const busy = link.isPending || unlink.isPending;
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
      <form
        className="dialog-body"
        onSubmit={(e) => {
          e.preventDefault();
          link.mutate();
        }}
      >
        <h2 id={titleId} className="dialog-title">
          Sign-in with {providerName} for {user.username}
        </h2>
        <p>
          Enter the subject identifier (<code>sub</code>) {providerName} gives this person. A sign-in it refuses because
          no account is linked is in the audit log with that identifier.
        </p>
        <div className="field">
          <label htmlFor={subjectId}>Subject identifier</label>
          <input
            id={subjectId}
            value={subject}
            onChange={(e) => setSubject(e.target.value)}
            required
            maxLength={255}
            autoComplete="off"
          />
        </div>
        {link.isError ? <ErrorMessage error={link.error} /> : null}
        {unlink.isError ? <ErrorMessage error={unlink.error} /> : null}
        <div className="dialog-actions">
          <button type="button" className="button button-secondary" onClick={() => onClose(false)}>
            Cancel
          </button>
          {user.oidcIdentity ? (
            <button type="button" className="button button-danger" disabled={busy} onClick={() => unlink.mutate()}>
              Unlink
            </button>
          ) : null}
          <button type="submit" className="button button-primary" disabled={busy || !subject.trim()} aria-busy={busy}>
            {link.isPending ? 'Linking…' : 'Link'}
          </button>
        </div>
      </form>
    </dialog>
  );
}
