import { QueryClientProvider, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { createBrowserRouter, Navigate, NavLink, Outlet, RouterProvider, useLocation } from 'react-router';
import { AccountsPage } from './accounts/accounts-page.js';
import { ChangePasswordDialog, ForcedPasswordChange } from './auth/password-change.js';
import { SessionProvider, useSession } from './auth/session-context.js';
import { ReauthenticateDialog, SessionWarningBanner } from './auth/session-dialogs.js';
import { useScrollToHash } from './auth/use-hash-target.js';
import { AuditPage } from './audit/audit-page.js';
import { NotFoundPage } from './pages/not-found-page.js';
import { NotificationsPage } from './notifications/notifications-page.js';
import { PrivacyPage } from './privacy/privacy-page.js';
import { SiloPrivacyPage } from './privacy/silo-privacy-page.js';
import { SignInPage } from './pages/sign-in-page.js';
import { createQueryClient } from './query-client.js';
import { Loading } from './ui/feedback.js';
import { SiloDetailPage } from './silos/silo-detail-page.js';
import { SilosPage } from './silos/silos-page.js';
import { StudiesPage } from './study/studies-page.js';
import { StudyPage } from './study/study-page.js';
import { EditPlanPage, NewStudyPage } from './study/study-wizard-page.js';

/** Pages behind sign-in: the header with role-aware navigation, then the page. */
function Shell() {
  const { session, status, signOut, warning, lapsedReason } = useSession();
  const location = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  const [changingPassword, setChangingPassword] = useState(false);
  useEffect(() => setMenuOpen(false), [location.pathname]);
  useScrollToHash();
  if (status === 'restoring') {
    return (
      <main className="main">
        <Loading label="Signing in…" />
      </main>
    );
  }
  if (!session) {
    // The whole address, #section included, comes back after sign-in.
    return <Navigate to="/sign-in" replace state={{ from: location.pathname + location.search + location.hash }} />;
  }
  const readOnly = session.role === 'auditor';
  const lapsed = status === 'lapsed';
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="topbar-inner">
          <NavLink to="/studies" className="brand" aria-label="Tessera console, studies">
            <img src="/favicon.svg" alt="" width="24" height="24" />
            <span>Tessera</span>
          </NavLink>
          <button
            type="button"
            className="menu-toggle"
            aria-expanded={menuOpen}
            aria-controls="main-nav"
            onClick={() => setMenuOpen((o) => !o)}
          >
            Menu
          </button>
          <nav id="main-nav" aria-label="Main" className={menuOpen ? 'nav nav-open' : 'nav'}>
            <NavLink to="/studies">Studies</NavLink>
            <NavLink to="/silos">Silos</NavLink>
            <NavLink to="/privacy">Privacy</NavLink>
            <NavLink to="/audit">Audit</NavLink>
            {session.role === 'admin' ? <NavLink to="/accounts">Accounts</NavLink> : null}
            {session.role === 'admin' ? <NavLink to="/notifications">Notifications</NavLink> : null}
          </nav>
          <div className={menuOpen ? 'user user-open' : 'user'}>
            <span className="user-name">
              {session.username} <span className={`role role-${session.role}`}>{session.role}</span>
            </span>
            {session.passwordChangeRequired ? null : (
              <button type="button" className="button button-ghost" onClick={() => setChangingPassword(true)}>
                Change password
              </button>
            )}
            <button type="button" className="button button-ghost" onClick={() => signOut()}>
              Sign out
            </button>
          </div>
        </div>
        {readOnly ? (
          <p className="readonly-banner" role="note">
            Read-only console: auditors can see everything and change nothing.
          </p>
        ) : null}
      </header>
      {warning && !lapsed ? <SessionWarningBanner warning={warning} /> : null}
      {/* Lapsed: hidden but mounted, so what was typed is still there after the password is entered again. */}
      <main id="main" className="main" tabIndex={-1} hidden={lapsed}>
        {session.passwordChangeRequired ? <ForcedPasswordChange /> : <Outlet />}
      </main>
      {lapsed ? <ReauthenticateDialog username={session.username} reason={lapsedReason ?? ''} /> : null}
      <ChangePasswordDialog open={changingPassword} onClose={() => setChangingPassword(false)} />
    </div>
  );
}

/**
 * Forgets every cached read when the person signs out or another person signs in (in this tab or another): what
 * one account was allowed to read must not show to the next.
 */
function CachedReadsOfOnePerson() {
  const { session, status } = useSession();
  const queryClient = useQueryClient();
  const owner = useRef<string | null>(null);
  useEffect(() => {
    const username = status === 'signed-out' ? null : (session?.username ?? owner.current);
    if (username !== owner.current) {
      if (owner.current !== null) queryClient.clear();
      owner.current = username;
    }
  }, [session, status, queryClient]);
  return null;
}

/** Administrator-only pages send auditors back to the list they came from. */
function AdminOnly({ children, fallback }: { children: React.ReactNode; fallback: string }) {
  const { session } = useSession();
  return session?.role === 'admin' ? children : <Navigate to={fallback} replace />;
}

const router = createBrowserRouter([
  { path: '/sign-in', element: <SignInPage /> },
  {
    element: <Shell />,
    children: [
      { index: true, element: <Navigate to="/studies" replace /> },
      { path: 'studies', element: <StudiesPage /> },
      {
        path: 'studies/new',
        element: (
          <AdminOnly fallback="/studies">
            <NewStudyPage />
          </AdminOnly>
        ),
      },
      { path: 'studies/:id', element: <StudyPage /> },
      {
        path: 'studies/:id/edit',
        element: (
          <AdminOnly fallback="/studies">
            <EditPlanPage />
          </AdminOnly>
        ),
      },
      { path: 'silos', element: <SilosPage /> },
      { path: 'silos/:id', element: <SiloDetailPage /> },
      { path: 'privacy', element: <PrivacyPage /> },
      { path: 'privacy/silos/:id', element: <SiloPrivacyPage /> },
      { path: 'audit', element: <AuditPage /> },
      {
        path: 'accounts',
        element: (
          <AdminOnly fallback="/studies">
            <AccountsPage />
          </AdminOnly>
        ),
      },
      {
        path: 'notifications',
        element: (
          <AdminOnly fallback="/studies">
            <NotificationsPage />
          </AdminOnly>
        ),
      },
      { path: '*', element: <NotFoundPage /> },
    ],
  },
]);

export function ConsoleApp() {
  const [queryClient] = useState(createQueryClient);
  return (
    <QueryClientProvider client={queryClient}>
      <SessionProvider>
        <CachedReadsOfOnePerson />
        <RouterProvider router={router} />
      </SessionProvider>
    </QueryClientProvider>
  );
}
