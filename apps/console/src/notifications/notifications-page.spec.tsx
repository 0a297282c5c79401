import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { HubApiPaths } from '@tessera/protocol';
import createClient from 'openapi-fetch';
import type { ApiClient } from '../api/api-client.js';
import { ApiError } from '../api/api-error.js';
import { renderWithSession } from '../auth/session.test-util.js';
import { NotificationsPage } from './notifications-page.js';
import type { WebhookDelivery, WebhookEndpoint } from './webhooks-api.js';

afterEach(cleanup);

const EVENT_TYPES = ['study.submitted', 'study.decision', 'study.started', 'study.failed', 'privacy.budget_reached'];

function endpoint(overrides: Partial<WebhookEndpoint>): WebhookEndpoint {
  return {
    id: '00000000-0000-4000-8000-0000000000a1',
    url: 'https://alerts.example.org/tessera',
    description: 'on-call',
    events: ['study.failed'],
    enabled: true,
    createdAt: '2026-12-06T09:00:00.000Z',
    updatedAt: '2026-12-06T09:00:00.000Z',
    pending: 0,
    failed: 1,
    ...overrides,
  };
}

const FAILED: WebhookDelivery = {
  id: '00000000-0000-4000-8000-0000000000d1',
  eventId: 'audit-12',
  eventType: 'study.failed',
  status: 'failed',
  attempts: 2,
  nextAttemptAt: null,
  createdAt: '2026-12-06T10:00:00.000Z',
  finishedAt: '2026-12-06T10:00:03.000Z',
  log: [
    { attempt: 1, at: '2026-12-06T10:00:00.000Z', statusCode: 500, durationMs: 12, error: 'HTTP 500' },
    {
      attempt: 2,
      at: '2026-12-06T10:00:03.000Z',
      statusCode: null,
      durationMs: 10000,
      error: 'no answer within 10000 ms',
    },
  ],
};

/** The hub's /api/webhooks as the page sees it, through ApiClient.json and .send. */
function fakeHub() {
  let endpoints = [endpoint({})];
  const json = vi.fn((method: string, path: string, body?: unknown): Promise<unknown> => {
    if (method === 'GET' && path === '/api/webhooks') return Promise.resolve(endpoints);
    if (method === 'GET' && path === '/api/webhooks/event-types') return Promise.resolve({ eventTypes: EVENT_TYPES });
    if (method === 'GET' && path.endsWith('/deliveries?limit=50')) return Promise.resolve([FAILED]);
    if (method === 'POST' && path === '/api/webhooks') {
      const input = body as { url: string; events: string[]; description: string };
      if (input.url.includes('refused')) {
        return Promise.reject(
          new ApiError(400, 'VALIDATION_FAILED', 'url must use https: plain http to 127.0.0.1 needs TESSERA_…'),
        );
      }
      const created = endpoint({ id: '00000000-0000-4000-8000-0000000000a2', ...input, failed: 0 });
      endpoints = [...endpoints, created];
      return Promise.resolve({ endpoint: created, secret: 'whsec_shown-once' });
    }
    return Promise.reject(new Error(`unexpected ${method} ${path}`));
  });
  const send = vi.fn(() => Promise.resolve(new Response(null, { status: 204 })));
  // The page's typed calls (ApiClient.api, openapi-fetch) reach the same fake: method, path with query, JSON body.
  const route = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const path = `${url.pathname}${url.search}`;
    if (request.method === 'DELETE') return send();
    const text = request.body === null ? '' : await request.text();
    return Response.json(await json(request.method, path, text === '' ? undefined : JSON.parse(text)));
  };
  return {
    json,
    send,
    api: createClient<HubApiPaths>({ baseUrl: 'http://hub.invalid', fetch: route }),
    read: async (call: Promise<{ data?: unknown }>) => (await call).data,
    refresh: vi.fn(),
    logout: vi.fn(),
  };
}

describe('the Notifications page', () => {
  let hub: ReturnType<typeof fakeHub>;

  beforeEach(() => {
    hub = fakeHub();
    render(renderWithSession(<NotificationsPage />, { client: hub as unknown as ApiClient }).tree);
  });

  it('lists endpoints with their failures, and a log with every attempt', async () => {
    const row = (await screen.findByRole('rowheader', { name: /alerts\.example\.org/ })).closest('tr')!;
    expect(within(row).getByText('Enabled')).toBeTruthy();
    expect(within(row).getByText('study.failed')).toBeTruthy();
    fireEvent.click(within(row).getByRole('button', { name: 'Delivery log' }));
    const log = await screen.findByRole('region', { name: /Delivery log of https:\/\/alerts/ });
    await within(log).findByText('failed');
    expect(within(log).getByText(/HTTP 500 · 12 ms · HTTP 500/)).toBeTruthy();
    expect(within(log).getByText(/no answer · 10000 ms · no answer within 10000 ms/)).toBeTruthy();
  });

  it('checks the URL and the events before asking the hub, and shows the secret once', async () => {
    fireEvent.click(await screen.findByRole('button', { name: 'Add an endpoint' }));
    await screen.findByLabelText(/A steward approved or rejected/);
    const url = screen.getByLabelText('URL');
    fireEvent.change(url, { target: { value: 'http://alerts.example.org/x' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add and show the secret' }));
    expect(screen.getByText(/The URL must start with https:\/\//)).toBeTruthy();
    expect(hub.json).not.toHaveBeenCalledWith('POST', '/api/webhooks', expect.anything());

    fireEvent.change(url, { target: { value: 'https://hooks.example.org/t' } });
    fireEvent.click(screen.getByLabelText(/A steward approved or rejected/));
    fireEvent.click(screen.getByRole('button', { name: 'Add and show the secret' }));
    const secret = await screen.findByRole('textbox', { name: 'Secret' });
    expect(secret).toHaveProperty('value', 'whsec_shown-once');
    expect(hub.json).toHaveBeenCalledWith('POST', '/api/webhooks', {
      url: 'https://hooks.example.org/t',
      events: ['study.submitted', 'study.failed', 'privacy.budget_reached', 'study.decision'],
      description: '',
    });
    fireEvent.click(screen.getByRole('button', { name: 'I have stored it' }));
    fireEvent.click(screen.getByRole('button', { name: 'Close it' }));
    await waitFor(() => expect(screen.queryByRole('textbox', { name: 'Secret' })).toBeNull());
    await screen.findByRole('rowheader', { name: /hooks\.example\.org/ });
  });

  it('shows the hub’s refusal and keeps the form', async () => {
    fireEvent.click(await screen.findByRole('button', { name: 'Add an endpoint' }));
    fireEvent.change(screen.getByLabelText('URL'), { target: { value: 'https://refused.example.org/' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add and show the secret' }));
    await screen.findByText('The endpoint was not added');
    expect(screen.getByLabelText('URL')).toHaveProperty('value', 'https://refused.example.org/');
  });
});
