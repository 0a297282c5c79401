import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import type { UserView } from '@tessera/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ApiClient } from '../api/api-client.js';
import { ApiError } from '../api/api-error.js';
import { renderWithSession } from '../auth/session.test-util.js';
import { AccountsPage } from './accounts-page.js';

afterEach(cleanup);

function account(overrides: Partial<UserView>): UserView {
  return {
    id: '00000000-0000-4000-8000-000000000001',
    username: 'alice',
    role: 'admin',
    disabled: false,
    mustChangePassword: false,
    createdAt: '2026-11-22T09:00:00.000Z',
    lastSignInAt: '2026-12-01T08:30:00.000Z',
    liveSessions: 1,
    oidcIdentity: null,
    ...overrides,
  };
}

const ALICE = account({});
const BOB = account({ id: '00000000-0000-4000-8000-000000000002', username: 'bob', role: 'auditor', liveSessions: 2 });
const CAROL = account({
  id: '00000000-0000-4000-8000-000000000003',
  username: 'carol',
  role: 'auditor',
  mustChangePassword: true,
  lastSignInAt: null,
  liveSessions: 0,
});

/** The hub as the page sees it: a list that the calls change. */
function fakeHub() {
  let users = [ALICE, BOB, CAROL];
  const replace = (u: UserView) => {
    users = users.map((x) => (x.id === u.id ? u : x));
    return u;
  };
  const api = {
    users: vi.fn(() => Promise.resolve(users)),
    createUser: vi.fn((input: { username: string; role: UserView['role']; mustChangePassword?: boolean }) => {
      if (input.username.toLowerCase() === 'bob') {
        return Promise.reject(new ApiError(409, 'USERNAME_TAKEN', 'The username "BOB" is already taken (as "bob").'));
      }
      const created = account({
        id: '00000000-0000-4000-8000-000000000009',
        username: input.username,
        role: input.role,
        mustChangePassword: true,
        liveSessions: 0,
        lastSignInAt: null,
      });
      users = [...users, created];
      return Promise.resolve(created);
    }),
    updateUser: vi.fn((id: string, change: { role?: UserView['role']; disabled?: boolean }) => {
      const u = users.find((x) => x.id === id)!;
      return Promise.resolve(replace({ ...u, ...change, liveSessions: 0 }));
    }),
    resetPassword: vi.fn((id: string, _password: string) => {
      const u = users.find((x) => x.id === id)!;
      return Promise.resolve(replace({ ...u, mustChangePassword: true, liveSessions: 0 }));
    }),
    revokeSessions: vi.fn((id: string) => {
      const u = users.find((x) => x.id === id)!;
      return Promise.resolve(replace({ ...u, liveSessions: 0 }));
    }),
    oidcSignInOptions: vi.fn(() => Promise.resolve({ enabled: true, providerName: 'Hospital Login' })),
    linkOidcIdentity: vi.fn((id: string, subject: string) => {
      const u = users.find((x) => x.id === id)!;
      return Promise.resolve(replace({ ...u, oidcIdentity: { issuer: 'https://login.hospital.example', subject } }));
    }),
    unlinkOidcIdentity: vi.fn((id: string) => {
      const u = users.find((x) => x.id === id)!;
      return Promise.resolve(replace({ ...u, oidcIdentity: null }));
    }),
    refresh: vi.fn(),
    logout: vi.fn(() => Promise.resolve()),
  };
  return api;
}

function rowOf(name: string): HTMLElement {
  return screen.getByRole('rowheader', { name: new RegExp(`^${name}`) }).closest('tr')!;
}

async function rowAfterLoad(name: string): Promise<HTMLElement> {
  return (await screen.findByRole('rowheader', { name: new RegExp(`^${name}`) })).closest('tr')!;
}

describe('the accounts page', () => {
  let hub: ReturnType<typeof fakeHub>;

  beforeEach(() => {
    hub = fakeHub();
    const { tree } = renderWithSession(<AccountsPage />, { client: hub as unknown as ApiClient });
    render(tree);
  });

  it('lists every account with its role, status, last sign-in and live sessions; no actions on one’s own', async () => {
    await screen.findByRole('rowheader', { name: /^bob/ });
    expect(within(rowOf('alice')).getByText('(you)')).toBeTruthy();
    expect(within(rowOf('alice')).queryByRole('button')).toBeNull();
    expect(within(rowOf('alice')).queryByRole('combobox')).toBeNull();
    expect(within(rowOf('bob')).getByRole('combobox', { name: 'Role of bob' })).toHaveProperty('value', 'auditor');
    expect(within(rowOf('bob')).getByText('Active')).toBeTruthy();
    expect(within(rowOf('bob')).getByText('2026-12-01 08:30 UTC')).toBeTruthy();
    expect(within(rowOf('bob')).getByRole('button', { name: 'End sessions' })).toBeTruthy();
    expect(within(rowOf('carol')).getByText('Temporary password')).toBeTruthy();
    expect(within(rowOf('carol')).getByText('never')).toBeTruthy();
    // Nobody signed in: nothing to end.
    expect(within(rowOf('carol')).queryByRole('button', { name: 'End sessions' })).toBeNull();
  });

  it('adds a person with a generated temporary password that must be changed, and shows it once', async () => {
    fireEvent.click(await screen.findByRole('button', { name: 'Add a person' }));
    const username = screen.getByLabelText('Username');
    fireEvent.change(username, { target: { value: 'd' } });
    expect(screen.getByText('Use 3 to 64 letters, digits, dots, dashes or underscores.')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Add and show the temporary password' }));
    expect(hub.createUser).not.toHaveBeenCalled();

    fireEvent.change(username, { target: { value: 'dora' } });
    fireEvent.change(screen.getByLabelText('Role'), { target: { value: 'admin' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add and show the temporary password' }));
    await screen.findByRole('heading', { name: 'Added dora' });
    const sent = hub.createUser.mock.calls[0]![0] as {
      username: string;
      password: string;
      role: string;
      mustChangePassword: boolean;
    };
    expect(sent).toMatchObject({ username: 'dora', role: 'admin', mustChangePassword: true });
    expect(sent.password).toMatch(/^[a-z2-9]{4}(-[a-z2-9]{4}){3}$/);
    expect(screen.getByLabelText('Temporary password')).toHaveProperty('value', sent.password);
    await screen.findByRole('rowheader', { name: /^dora/ });

    // Closing asks first: nobody can see this password again.
    fireEvent.click(screen.getByRole('button', { name: 'I have handed it over' }));
    expect(screen.getByText('The password will not be shown again.')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Keep it on screen' }));
    expect(screen.getByLabelText('Temporary password')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'I have handed it over' }));
    fireEvent.click(screen.getByRole('button', { name: 'Close it' }));
    expect(screen.queryByLabelText('Temporary password')).toBeNull();
  });

  it('shows the hub’s answer when the name is taken whatever its case', async () => {
    fireEvent.click(await screen.findByRole('button', { name: 'Add a person' }));
    fireEvent.change(screen.getByLabelText('Username'), { target: { value: 'BOB' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add and show the temporary password' }));
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('The person was not added');
    expect(alert.textContent).toContain('already taken (as "bob")');
  });

  it('disables an account after a confirmation that says what happens', async () => {
    fireEvent.click(within(await rowAfterLoad('bob')).getByRole('button', { name: 'Disable' }));
    const dialog = screen.getByRole('dialog', { hidden: true });
    expect(dialog.textContent).toContain('Disable bob?');
    expect(dialog.textContent).toContain('signed out everywhere at once');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Disable', hidden: true }));
    await waitFor(() => expect(hub.updateUser).toHaveBeenCalledWith(BOB.id, { disabled: true }));
    await waitFor(() => expect(within(rowOf('bob')).getByText('Disabled')).toBeTruthy());
    expect(within(rowOf('bob')).getByRole('button', { name: 'Enable' })).toBeTruthy();
  });

  it('changes a role only once confirmed, and leaves it as it was when cancelled', async () => {
    const select = within(await rowAfterLoad('bob')).getByRole('combobox');
    fireEvent.change(select, { target: { value: 'admin' } });
    const dialog = screen.getByRole('dialog', { hidden: true });
    expect(dialog.textContent).toContain('Make bob an administrator?');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel', hidden: true }));
    expect(hub.updateUser).not.toHaveBeenCalled();
    expect(select).toHaveProperty('value', 'auditor');

    fireEvent.change(select, { target: { value: 'admin' } });
    fireEvent.click(
      within(screen.getByRole('dialog', { hidden: true })).getByRole('button', {
        name: 'Make administrator',
        hidden: true,
      }),
    );
    await waitFor(() => expect(hub.updateUser).toHaveBeenCalledWith(BOB.id, { role: 'admin' }));
  });

  it('resets a password to a new temporary one and hands it over', async () => {
    fireEvent.click(within(await rowAfterLoad('bob')).getByRole('button', { name: 'Reset password' }));
    const dialog = screen
      .getAllByRole('dialog', { hidden: true })
      .find((d) => d.textContent?.includes('Reset bob’s password?'))!;
    expect(dialog.textContent).toContain('signed out everywhere at once');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Reset password', hidden: true }));
    await screen.findByRole('heading', { name: 'New temporary password for bob' });
    const [id, password] = hub.resetPassword.mock.calls[0]!;
    expect(id).toBe(BOB.id);
    expect(screen.getByLabelText('Temporary password')).toHaveProperty('value', password);
  });

  it('ends someone’s sessions after a confirmation', async () => {
    fireEvent.click(within(await rowAfterLoad('bob')).getByRole('button', { name: 'End sessions' }));
    fireEvent.click(
      within(screen.getByRole('dialog', { hidden: true })).getByRole('button', { name: 'End sessions', hidden: true }),
    );
    await waitFor(() => expect(hub.revokeSessions).toHaveBeenCalledWith(BOB.id));
    await waitFor(() => expect(within(rowOf('bob')).queryByRole('button', { name: 'End sessions' })).toBeNull());
  });

  it('links an account to its identity at the identity provider, and unlinks it', async () => {
    const row = await rowAfterLoad('bob');
    fireEvent.click(await within(row).findByRole('button', { name: 'Link bob’s sign-in with Hospital Login' }));
    const dialog = screen.getByRole('dialog', { name: 'Sign-in with Hospital Login for bob' });
    fireEvent.change(within(dialog).getByLabelText('Subject identifier'), { target: { value: ' 248289761001 ' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Link' }));
    await waitFor(() => expect(hub.linkOidcIdentity).toHaveBeenCalledWith(BOB.id, '248289761001'));
    expect(await within(rowOf('bob')).findByText('Signs in with Hospital Login')).toBeTruthy();

    fireEvent.click(within(rowOf('bob')).getByRole('button', { name: 'Change bob’s sign-in with Hospital Login' }));
    fireEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Unlink' }));
    await waitFor(() => expect(hub.unlinkOidcIdentity).toHaveBeenCalledWith(BOB.id));
    await waitFor(() => expect(within(rowOf('bob')).queryByText('Signs in with Hospital Login')).toBeNull());
    // Not on one's own account.
    expect(within(rowOf('alice')).queryByRole('button')).toBeNull();
  });
});
