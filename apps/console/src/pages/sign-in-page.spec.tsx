import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { cleanup, render, screen, waitFor } from '@testing-library/react';
import { MemoryRouter } from 'react-router';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ApiClient } from '../api/api-client.js';
import { ApiError } from '../api/api-error.js';
import { MemoryStorage, TabBus } from '../auth/session.test-util.js';
import { SessionProvider } from '../auth/session-context.js';
import { SignInPage } from './sign-in-page.js';

afterEach(cleanup);

/** A browser that is not signed in (the refresh is refused), on a hub whose OIDC sign-in is as given. */
function renderSignIn(oidc: { enabled: boolean; providerName: string | null }, entry: string | object = '/sign-in') {
  const client = {
    refresh: vi.fn(() => Promise.reject(new ApiError(401, 'UNAUTHORIZED', 'The session has ended. Sign in again.'))),
    oidcSignInOptions: vi.fn(() => Promise.resolve(oidc)),
    logout: vi.fn(() => Promise.resolve()),
  };
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <QueryClientProvider client={queryClient}>
      <SessionProvider
        client={client as unknown as ApiClient}
        storage={new MemoryStorage()}
        channel={new TabBus().open()}
      >
        <MemoryRouter initialEntries={[entry]}>
          <SignInPage />
        </MemoryRouter>
      </SessionProvider>
    </QueryClientProvider>,
  );
  return client;
}

describe('the sign-in page', () => {
  it('offers the identity provider by name when the hub has it, coming back to where the person was going', async () => {
    renderSignIn(
      { enabled: true, providerName: 'Hospital Login' },
      {
        pathname: '/sign-in',
        state: { from: '/studies/s-1#rounds' },
      },
    );
    const link = await screen.findByRole('link', { name: 'Sign in with Hospital Login' });
    const href = new URL(link.getAttribute('href')!, 'https://hub.example');
    expect(href.pathname).toBe('/api/auth/oidc/start');
    expect(href.searchParams.get('returnTo')).toBe('/studies/s-1#rounds');
  });

  it('offers no provider when the hub has none', async () => {
    const client = renderSignIn({ enabled: false, providerName: null });
    await screen.findByRole('button', { name: 'Sign in' });
    await waitFor(() => expect(client.oidcSignInOptions).toHaveBeenCalled());
    expect(screen.queryByRole('link', { name: /Sign in with/ })).toBeNull();
  });

  it('says why the identity provider’s sign-in was refused', async () => {
    const message = 'Your identity at the identity provider is not linked to a Tessera account.';
    renderSignIn(
      { enabled: true, providerName: 'Hospital Login' },
      `/sign-in?${new URLSearchParams({ oidcError: message }).toString()}`,
    );
    expect(await screen.findByText(message)).toBeTruthy();
  });
});
