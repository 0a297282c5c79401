import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Navigate, useLocation, useNavigate, useSearchParams } from 'react-router';
import { useSession } from '../auth/session-context.js';
import { ErrorMessage, Loading, Notice } from '../ui/feedback.js';
import { usePageTitle } from '../ui/page-title.js';

export function SignInPage() {
  usePageTitle('Sign in');
  const { session, status, signIn, signedOutReason, api } = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  const from = (location.state as { from?: string } | null)?.from ?? '/studies';
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  // The hub sends the browser back here with the reason when the identity provider's sign-in was refused.
  const [search] = useSearchParams();
  const oidcError = search.get('oidcError');
  const oidc = useQuery({ queryKey: ['oidc-sign-in'], queryFn: () => api.oidcSignInOptions(), retry: false });
  const providerStart = `/api/auth/oidc/start?${new URLSearchParams({ returnTo: from }).toString()}`;
  // Signed in here, or in another tab of this browser meanwhile: on to where the person was going (#section too).
  if (session && status === 'signed-in') return <Navigate to={from} replace />;
  if (status === 'restoring') {
    return (
      <main className="signin">
        <Loading label="Signing in…" />
      </main>
    );
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(username.trim(), password);
      void navigate(from, { replace: true });
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  return (
    <main className="signin">
      <form className="signin-card" onSubmit={(e) => void submit(e)} aria-labelledby="signin-title">
        <div className="signin-brand">
          <img src="/favicon.svg" alt="" width="36" height="36" />
          <div>
            <h1 id="signin-title">Tessera console</h1>
            <p className="muted">Federated studies across hospitals</p>
          </div>
        </div>
        {signedOutReason ? <Notice tone="warning">{signedOutReason}</Notice> : null}
        <div className="field">
          <label htmlFor="username">Username</label>
          <input
            id="username"
            name="username"
            autoComplete="username"
            value={username}
            onChange={(e) => setUsername(e.target.value)}
            required
            autoFocus
          />
        </div>
        <div className="field">
          <label htmlFor="password">Password</label>
          <input
            id="password"
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
          />
        </div>
        {error ? <ErrorMessage error={error} title="Sign-in failed" /> : null}
        {oidcError && !error ? <Notice tone="danger">{oidcError}</Notice> : null}
        <button type="submit" className="button button-primary button-block" disabled={busy} aria-busy={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        {oidc.data?.enabled ? (
          // A plain link: the browser itself goes to the hub, which sends it on to the provider and back.
          <a className="button button-block" href={providerStart}>
            Sign in with {oidc.data.providerName}
          </a>
        ) : null}
        <p className="hint">
          You stay signed in while you work, in every tab of this browser. After a while without activity the console
          asks for your password again, and keeps what was on the page.
        </p>
      </form>
    </main>
  );
}
