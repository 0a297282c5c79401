import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Route, Routes, useLocation } from 'react-router';
import type { ApiClient } from '../api/api-client.js';
import { ApiError } from '../api/api-error.js';
import { SignInPage } from '../pages/sign-in-page.js';
import { ForcedPasswordChange, newPasswordProblems } from './password-change.js';
import { useSession } from './session-context.js';
import { MemoryStorage, renderWithSession, sessionView, signedInStorage } from './session.test-util.js';
import { hashTarget } from './use-hash-target.js';

afterEach(cleanup);

function SessionLine() {
  const { session } = useSession();
  return <p data-testid="session">{session ? `${session.token} change:${session.passwordChangeRequired}` : 'none'}</p>;
}

describe('newPasswordProblems', () => {
  it('asks for 12 to 256 characters, different from the current one, typed the same twice', () => {
    expect(newPasswordProblems('old password 1', 'short', 'short').next).toMatch(/12 to 256/);
    expect(newPasswordProblems('same password 1', 'same password 1', 'same password 1').next).toMatch(/differ/);
    expect(newPasswordProblems('old password 1', 'a new password 2', 'a new passw0rd 2').confirm).toMatch(/differ/);
    expect(newPasswordProblems('old password 1', 'a new password 2', 'a new password 2')).toEqual({
      next: null,
      confirm: null,
    });
  });
});

describe('the forced password change', () => {
  function setUp(changePassword: ReturnType<typeof vi.fn>) {
    const client = { changePassword, refresh: vi.fn(), logout: vi.fn(() => Promise.resolve()) };
    const { tree } = renderWithSession(
      <>
        <ForcedPasswordChange />
        <SessionLine />
      </>,
      {
        client: client as unknown as ApiClient,
        storage: signedInStorage('auditor', { username: 'dave', passwordChangeRequired: true }),
      },
    );
    render(tree);
  }

  function fill(current: string, next: string, confirm = next) {
    fireEvent.change(screen.getByLabelText('Temporary password'), { target: { value: current } });
    fireEvent.change(screen.getByLabelText('New password'), { target: { value: next } });
    fireEvent.change(screen.getByLabelText('New password, again'), { target: { value: confirm } });
    fireEvent.click(screen.getByRole('button', { name: 'Change password' }));
  }

  it('explains itself and refuses a weak or mistyped password before asking the hub', () => {
    const changePassword = vi.fn();
    setUp(changePassword);
    expect(screen.getByRole('heading', { name: 'Choose your password' })).toBeTruthy();
    expect(screen.getByText(/temporary password from an administrator/)).toBeTruthy();
    fill('temporary pw 1', 'short');
    expect(screen.getByText(/Use 12 to 256 characters/)).toBeTruthy();
    fill('temporary pw 1', 'a long new password', 'a long new passw0rd');
    expect(screen.getByText('The two new passwords differ.')).toBeTruthy();
    expect(changePassword).not.toHaveBeenCalled();
  });

  it('shows the hub’s refusal of a wrong temporary password, naming the field', async () => {
    setUp(
      vi.fn(() =>
        Promise.reject(
          new ApiError(400, 'VALIDATION_FAILED', 'currentPassword is not the password of this account', undefined, [
            'currentPassword is not the password of this account',
          ]),
        ),
      ),
    );
    fill('not it', 'a long new password');
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('The password was not changed');
    expect(alert.textContent).toContain('currentPassword is not the password of this account');
    expect(screen.getByTestId('session').textContent).toBe('access-1 change:true');
  });

  it('changes it and carries on with the new session the hub answers', async () => {
    const changePassword = vi.fn(() =>
      Promise.resolve(sessionView({ accessToken: 'access-new', username: 'dave', role: 'auditor' })),
    );
    setUp(changePassword);
    fill('temporary pw 1', 'a long new password');
    await waitFor(() => expect(screen.getByTestId('session').textContent).toBe('access-new change:false'));
    expect(changePassword).toHaveBeenCalledWith('temporary pw 1', 'a long new password');
  });
});

function Where() {
  const location = useLocation();
  return <p data-testid="where">{location.pathname + location.hash}</p>;
}

describe('a deep link opened while signed out', () => {
  it('comes back, #section included, after sign-in', async () => {
    const client = {
      login: vi.fn(() => Promise.resolve(sessionView())),
      refresh: vi.fn(() => Promise.reject(new ApiError(401, 'UNAUTHENTICATED', 'none'))),
      logout: vi.fn(),
    };
    // The Shell sends a signed-out visitor of /audit#chain-title to sign-in with the whole address in `from`.
    const withFrom = renderWithSession(
      <Routes>
        <Route path="/sign-in" element={<SignInPage />} />
        <Route path="/audit" element={<Where />} />
      </Routes>,
      {
        client: client as unknown as ApiClient,
        storage: new MemoryStorage(),
        path: '/sign-in',
        from: '/audit#chain-title',
      },
    );
    render(withFrom.tree);
    fireEvent.change(await screen.findByLabelText('Username'), { target: { value: 'alice' } });
    fireEvent.change(screen.getByLabelText('Password'), { target: { value: 'pw' } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    await waitFor(() => expect(screen.getByTestId('where').textContent).toBe('/audit#chain-title'));
  });

  it('finds the section the fragment names, escaped or not', () => {
    document.body.innerHTML = '<h2 id="chain-title">Chain</h2><h2 id="a b">Spaced</h2>';
    expect(hashTarget('#chain-title')?.textContent).toBe('Chain');
    expect(hashTarget('#a%20b')?.textContent).toBe('Spaced');
    expect(hashTarget('#')).toBeNull();
    expect(hashTarget('#%E0%A4%A')).toBeNull();
    expect(hashTarget('#missing')).toBeNull();
  });
});
