import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import type { UserRole, UserView } from '@tessera/protocol';
import { useApi, useSession } from '../auth/session-context.js';
import { formatTime } from '../lib/format.js';
import { ConfirmDialog } from '../ui/actions.js';
import { Badge, EmptyState, ErrorMessage, Loading } from '../ui/feedback.js';
import { usePageTitle } from '../ui/page-title.js';
import { AddPersonForm, HandOverPanel, ResetPasswordDialog, type HandOver } from './account-forms.js';
import { OidcLinkDialog } from './oidc-link-dialog.js';

export const ROLE_NAMES: Record<UserRole, string> = { admin: 'Administrator', auditor: 'Auditor' };

/** A change to one account that needs a confirmation first. */
type PendingChange =
  { kind: 'role'; user: UserView; role: UserRole } | { kind: 'disable' | 'enable' | 'end-sessions'; user: UserView };

/**
 * Administrators manage the people who use the hub: add someone with a temporary password (changed at their first
 * sign-in), change a role, disable or enable an account, set a new temporary password, end someone's sessions.
 * Every change is recorded in the audit trail; role changes, disabling and password resets end the account's
 * sessions at once.
 */
export function AccountsPage() {
  usePageTitle('Accounts');
  const api = useApi();
  const { session } = useSession();
  const queryClient = useQueryClient();
  const users = useQuery({ queryKey: ['users'], queryFn: () => api.users() });
  const [adding, setAdding] = useState(false);
  const [handOver, setHandOver] = useState<HandOver | null>(null);
  const [pending, setPending] = useState<PendingChange | null>(null);
  const [resetting, setResetting] = useState<UserView | null>(null);
  const [linking, setLinking] = useState<UserView | null>(null);
  // The identity provider's sign-in, when the hub offers it: each account can be linked to a person there.
  const oidc = useQuery({ queryKey: ['oidc-sign-in'], queryFn: () => api.oidcSignInOptions() });
  const providerName = oidc.data?.enabled ? oidc.data.providerName : null;

  const change = useMutation({
    mutationFn: (c: PendingChange) => {
      switch (c.kind) {
        case 'role':
          return api.updateUser(c.user.id, { role: c.role });
        case 'disable':
          return api.updateUser(c.user.id, { disabled: true });
        case 'enable':
          return api.updateUser(c.user.id, { disabled: false });
        case 'end-sessions':
          return api.revokeSessions(c.user.id);
      }
    },
    onSuccess: () => {
      setPending(null);
      void queryClient.invalidateQueries({ queryKey: ['users'] });
    },
  });

  function ask(c: PendingChange) {
    change.reset();
    setPending(c);
  }

  return (
    <section className="page" aria-labelledby="accounts-title">
      <div className="page-head">
        <h1 id="accounts-title">Accounts</h1>
        {!adding && !handOver ? (
          <button type="button" className="button button-primary" onClick={() => setAdding(true)}>
            Add a person
          </button>
        ) : null}
      </div>
      <p className="lead">
        Administrators run studies and silos; auditors read everything and change nothing. A new person, or one whose
        password an administrator resets, gets a temporary password and chooses their own at their first sign-in.
      </p>
      {handOver ? <HandOverPanel handOver={handOver} onDone={() => setHandOver(null)} /> : null}
      {adding ? (
        <AddPersonForm
          onCancel={() => setAdding(false)}
          onAdded={(h) => {
            setAdding(false);
            setHandOver(h);
            void queryClient.invalidateQueries({ queryKey: ['users'] });
          }}
        />
      ) : null}
      {users.isPending ? (
        <Loading label="Loading accounts…" />
      ) : users.isError ? (
        <ErrorMessage error={users.error} title="The accounts could not be loaded" />
      ) : users.data.length === 0 ? (
        <EmptyState title="No account yet" />
      ) : (
        <div className="table-wrap">
          <table className="table">
            <caption className="visually-hidden">People who can sign in to this hub</caption>
            <thead>
              <tr>
                <th scope="col">Person</th>
                <th scope="col">Role</th>
                <th scope="col">Status</th>
                <th scope="col">Last sign-in</th>
                <th scope="col">Sessions</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {users.data.map((u) => (
                <AccountRow
                  key={u.id}
                  user={u}
                  isSelf={u.username === session?.username}
                  onRole={(role) => ask({ kind: 'role', user: u, role })}
                  onDisable={() => ask({ kind: u.disabled ? 'enable' : 'disable', user: u })}
                  onEndSessions={() => ask({ kind: 'end-sessions', user: u })}
                  onReset={() => setResetting(u)}
                  providerName={providerName}
                  onLink={() => setLinking(u)}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ConfirmDialog
        open={pending !== null}
        title={pending ? confirmTitle(pending) : ''}
        confirmLabel={pending ? confirmLabel(pending) : ''}
        tone={pending?.kind === 'enable' ? 'primary' : 'danger'}
        busy={change.isPending}
        error={change.error}
        onConfirm={() => pending && change.mutate(pending)}
        onCancel={() => setPending(null)}
      >
        {pending ? <p>{confirmText(pending)}</p> : null}
      </ConfirmDialog>
      {linking && providerName ? (
        <OidcLinkDialog
          user={linking}
          providerName={providerName}
          onClose={(changed) => {
            setLinking(null);
            if (changed) void queryClient.invalidateQueries({ queryKey: ['users'] });
          }}
        />
      ) : null}
      {resetting ? (
        <ResetPasswordDialog
          user={resetting}
          onClose={(h) => {
            setResetting(null);
            if (h) {
              setHandOver(h);
              void queryClient.invalidateQueries({ queryKey: ['users'] });
            }
          }}
        />
      ) : null}
    </section>
  );
}

function AccountRow({
  user,
  isSelf,
  onRole,
  onDisable,
  onEndSessions,
  onReset,
  providerName,
  onLink,
}: {
  user: UserView;
  isSelf: boolean;
  onRole: (role: UserRole) => void;
  onDisable: () => void;
  onEndSessions: () => void;
  onReset: () => void;
  /** The identity provider's name when the hub offers OIDC sign-in, else null (no link control). */
  providerName: string | null;
  onLink: () => void;
}) {
  return (
    <tr>
      <th scope="row">
        {user.username} {isSelf ? <span className="muted">(you)</span> : null}
        {providerName ? (
          <div className="small">
            {user.oidcIdentity ? (
              <span className="muted" title={`${user.oidcIdentity.issuer} · ${user.oidcIdentity.subject}`}>
                Signs in with {providerName}
              </span>
            ) : null}{' '}
            {/* Like every other action, not on one's own account: another administrator links it. */}
            {isSelf ? null : (
              <button
                type="button"
                className="link-button"
                onClick={onLink}
                aria-label={`${user.oidcIdentity ? 'Change' : 'Link'} ${user.username}’s sign-in with ${providerName}`}
              >
                {user.oidcIdentity ? 'Change' : `Link ${providerName} sign-in`}
              </button>
            )}
          </div>
        ) : null}
      </th>
      <td>
        {isSelf ? (
          ROLE_NAMES[user.role]
        ) : (
          <select
            aria-label={`Role of ${user.username}`}
            value={user.role}
            onChange={(e) => onRole(e.target.value as UserRole)}
          >
            <option value="admin">{ROLE_NAMES.admin}</option>
            <option value="auditor">{ROLE_NAMES.auditor}</option>
          </select>
        )}
      </td>
      <td>
        {user.disabled ? (
          <Badge tone="danger">Disabled</Badge>
        ) : user.mustChangePassword ? (
          <Badge tone="warning" title="Signs in with a temporary password and must choose their own">
            Temporary password
          </Badge>
        ) : (
          <Badge tone="success">Active</Badge>
        )}
      </td>
      <td>{user.lastSignInAt ? formatTime(user.lastSignInAt) : <span className="muted">never</span>}</td>
      <td>{user.liveSessions}</td>
      <td>
        {isSelf ? (
          <span className="muted small">Use “Change password” at the top</span>
        ) : (
          <div className="row row-end">
            <button type="button" className="button button-secondary" onClick={onReset}>
              Reset password
            </button>
            {user.liveSessions > 0 ? (
              <button type="button" className="button button-secondary" onClick={onEndSessions}>
                End sessions
              </button>
            ) : null}
            <button
              type="button"
              className={user.disabled ? 'button button-secondary' : 'button button-danger'}
              onClick={onDisable}
            >
              {user.disabled ? 'Enable' : 'Disable'}
            </button>
          </div>
        )}
      </td>
    </tr>
  );
}

function confirmTitle(c: PendingChange): string {
  switch (c.kind) {
    case 'role':
      return `Make ${c.user.username} ${c.role === 'admin' ? 'an administrator' : 'an auditor'}?`;
    case 'disable':
      return `Disable ${c.user.username}?`;
    case 'enable':
      return `Enable ${c.user.username}?`;
    case 'end-sessions':
      return `End ${c.user.username}’s sessions?`;
  }
}

function confirmLabel(c: PendingChange): string {
  switch (c.kind) {
    case 'role':
      return `Make ${ROLE_NAMES[c.role].toLowerCase()}`;
    case 'disable':
      return 'Disable';
    case 'enable':
      return 'Enable';
    case 'end-sessions':
      return 'End sessions';
  }
}

function confirmText(c: PendingChange): string {
  switch (c.kind) {
    case 'role':
      return c.role === 'admin'
        ? 'They will be able to register silos, run studies and manage accounts. Their open sessions end now; they sign in again under the new role.'
        : 'They will read everything and change nothing. Their open sessions end now; they sign in again under the new role.';
    case 'disable':
      return 'They are signed out everywhere at once (open pages and live views included) and cannot sign in until an administrator enables the account again.';
    case 'enable':
      return 'They can sign in again with their password.';
    case 'end-sessions':
      return 'They are signed out everywhere at once and must sign in again. Use this for a lost laptop or a shared screen left signed in.';
  }
}
