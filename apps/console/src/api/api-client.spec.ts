import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiClient } from './api-client.js';
import { ApiError } from './api-error.js';

interface Seen {
  method: string;
  url: string;
  auth: string;
  body: unknown;
}

/** A hub answering each request with `answer(seen)`; records what the console sent. */
function stubHub(answer: (seen: Seen) => Response): Seen[] {
  const seen: Seen[] = [];
  vi.stubGlobal(
    'fetch',
    vi.fn((url: string, init: RequestInit) => {
      const headers = init.headers as Record<string, string>;
      const request = {
        method: String(init.method),
        url,
        auth: headers.authorization ?? 'none',
        // The client sends JSON text; anything else is recorded as it came, for the test to fail on.
        body: typeof init.body === 'string' ? (JSON.parse(init.body) as unknown) : init.body,
      };
      seen.push(request);
      return Promise.resolve(answer(request));
    }),
  );
  return seen;
}

const STUDY_ID = '00000000-0000-4000-8000-000000000001';

afterEach(() => vi.unstubAllGlobals());

// The typed calls (openapi-fetch over the hub's document) keep what the hand-written ones did: the base URL and the
// path, the bearer token, the body, the renewal on a 401 and the hub's error body as an ApiError.
describe('ApiClient, typed by the OpenAPI document', () => {
  it('sends path parameters, the body and the bearer token, and answers the parsed body', async () => {
    const seen = stubHub(() => Response.json({ id: STUDY_ID, status: 'stopped' }));
    const client = new ApiClient(() => 'token-1', undefined, 'https://hub.example');
    const study = await client.stopStudy(STUDY_ID, 'paused by the committee');
    expect(seen).toEqual([
      {
        method: 'POST',
        url: `https://hub.example/api/studies/${STUDY_ID}/stop`,
        auth: 'Bearer token-1',
        body: { reason: 'paused by the committee' },
      },
    ]);
    expect(study).toEqual({ id: STUDY_ID, status: 'stopped' });
  });

  it('leaves empty filters out of the query', async () => {
    const seen = stubHub(() => Response.json({ events: [], nextCursor: null, actorNames: {} }));
    await new ApiClient(() => 't').auditEvents({ action: 'silo.', q: '', limit: 50, studyId: undefined });
    expect(seen.map((s) => s.url)).toEqual(['/api/audit/events?action=silo.&limit=50']);
  });

  it('signs in without a token and answers a refused sign-in as the hub’s error', async () => {
    const seen = stubHub(() =>
      Response.json(
        { error: 'INVALID_CREDENTIALS', message: 'Wrong username or password.', correlationId: 'c-1' },
        { status: 401 },
      ),
    );
    const onUnauthorized = vi.fn();
    const error = await new ApiClient(() => 'stale', onUnauthorized).login('alice', 'wrong').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 401, code: 'INVALID_CREDENTIALS', correlationId: 'c-1' });
    expect(seen[0]).toMatchObject({ auth: 'none', body: { username: 'alice', password: 'wrong' } });
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it('renews the session on a 401 and sends the request once more with the new token', async () => {
    let token = 'old';
    const seen = stubHub((s) =>
      s.auth === 'Bearer new'
        ? Response.json([])
        : Response.json({ error: 'UNAUTHENTICATED', message: 'expired', correlationId: 'c' }, { status: 401 }),
    );
    const client = new ApiClient(
      () => token,
      () => {
        token = 'new';
        return true;
      },
    );
    expect(await client.silos()).toEqual([]);
    expect(seen.map((s) => `${s.method} ${s.url} ${s.auth}`)).toEqual([
      'GET /api/silos Bearer old',
      'GET /api/silos Bearer new',
    ]);
  });

  it('refuses an answer that is not JSON with BAD_RESPONSE', async () => {
    stubHub(() => new Response('<html>proxy error page</html>', { status: 200 }));
    const error = await new ApiClient(() => 't').users().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BAD_RESPONSE', status: 200 });
    expect((error as Error).message).toContain('GET /api/users');
  });
});
