import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freeLoopbackPort,
  RedirectClient,
  startTestOidcProvider,
  type ProviderPerson,
  type TestOidcProvider,
} from '../testing/oidc-provider.test-util';
import { ADMIN, DATABASE_KINDS, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { OIDC_REFUSAL_MESSAGES } from './oidc-sign-in.service';
import { REFRESH_COOKIE } from './session-cookie.util';

interface OidcBed {
  hub: TestHub;
  provider: TestOidcProvider;
  admin: Record<string, string>;
  db: DataSource;
}

/** A real hub whose console listener is at a known port (the provider must know the redirect URL first). */
async function startBed(kind: (typeof DATABASE_KINDS)[number], env: Record<string, string> = {}): Promise<OidcBed> {
  const port = await freeLoopbackPort();
  const redirectUrl = `http://127.0.0.1:${port}/api/auth/oidc/callback`;
  const provider = await startTestOidcProvider(redirectUrl);
  const hub = await startTestHub(kind, {
    env: {
      TESSERA_PORT: String(port),
      TESSERA_OIDC_ISSUER: provider.issuer,
      TESSERA_OIDC_CLIENT_ID: provider.client.clientId,
      TESSERA_OIDC_CLIENT_SECRET: provider.client.clientSecret,
      TESSERA_OIDC_REDIRECT_URL: redirectUrl,
      TESSERA_OIDC_PROVIDER_NAME: 'Hospital Login',
      TESSERA_OIDC_SCOPES: 'openid profile groups',
      ...env,
    },
  });
  return { hub, provider, admin: await signIn(hub, ADMIN.username, ADMIN.password), db: hub.app.get(DataSource) };
}

function person(name: string, groups: string[] = []): ProviderPerson {
  return { sub: `sub-${name}-${Math.random().toString(36).slice(2, 8)}`, preferredUsername: name, groups };
}

/** Whether a location is back on the hub's console (not an OIDC route): where the flow ends. */
function backOnConsole(hub: TestHub): (location: URL) => boolean {
  return (location) => location.origin === new URL(hub.url).origin && !location.pathname.startsWith('/api/auth/oidc');
}

/** Signs in at the provider as `who`, from the start route to the console page the hub sends the browser to. */
async function signInThroughProvider(
  bed: OidcBed,
  who: ProviderPerson,
  returnTo = '/studies#rounds',
  client = new RedirectClient(),
): Promise<{ landing: URL; client: RedirectClient }> {
  bed.provider.signInAs(who);
  const start = `${bed.hub.url}/api/auth/oidc/start?returnTo=${encodeURIComponent(returnTo)}`;
  const { last } = await client.follow(start, backOnConsole(bed.hub));
  return { landing: last, client };
}

/** What /api/auth/me answers. */
interface Me {
  username: string;
  role: string;
  mustChangePassword: boolean;
}

/** The session the refresh cookie the flow left in the client opens: its access token's `/me`. */
async function meOf(bed: OidcBed, client: RedirectClient): Promise<{ status: number; me?: Me }> {
  const cookie = client.cookiesOf(bed.hub.url).get(REFRESH_COOKIE);
  if (!cookie) return { status: 0 };
  const refreshed = await fetch(`${bed.hub.url}/api/auth/refresh`, {
    method: 'POST',
    headers: { cookie: `${REFRESH_COOKIE}=${cookie}` },
  });
  if (refreshed.status !== 200) return { status: refreshed.status };
  const { accessToken } = (await refreshed.json()) as { accessToken: string };
  const me = await api(bed.hub, 'GET', '/api/auth/me', { headers: { authorization: `Bearer ${accessToken}` } });
  return { status: me.status, me: me.body as Me };
}

async function createAccount(bed: OidcBed, username: string, role: 'admin' | 'auditor' = 'auditor'): Promise<string> {
  const res = await api(bed.hub, 'POST', '/api/users', {
    headers: bed.admin,
    json: { username, password: 'a temporary password 1', role },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return (res.body as { id: string }).id;
}

async function link(bed: OidcBed, userId: string, subject: string): Promise<{ status: number; body: unknown }> {
  return api(bed.hub, 'PUT', `/api/users/${userId}/oidc`, { headers: bed.admin, json: { subject } });
}

async function lastAudit(
  bed: OidcBed,
  action: string,
): Promise<{ actor: Record<string, unknown>; details: Record<string, unknown> }> {
  const rows = await bed.db.query<{ actor: Record<string, unknown>; details: Record<string, unknown> }[]>(
    `SELECT "actor", "details" FROM "audit_records" WHERE "action" = $1 ORDER BY "seq" DESC LIMIT 1`,
    [action],
  );
  expect(rows.length, `no ${action} record`).toBe(1);
  return rows[0]!;
}

function refusal(landing: URL): string | null {
  return landing.pathname === '/sign-in' ? landing.searchParams.get('oidcError') : null;
}

describe.each(DATABASE_KINDS)('OIDC sign-in against a real provider, on the %s database', (kind) => {
  let bed: OidcBed;

  beforeAll(async () => {
    bed = await startBed(kind);
  });
  afterAll(async () => {
    await bed?.hub.dispose();
    await bed?.provider.close();
  });

  it('tells the sign-in page the provider is offered, and its name', async () => {
    const res = await api(bed.hub, 'GET', '/api/auth/oidc');
    expect(res.body).toEqual({ enabled: true, providerName: 'Hospital Login' });
  });

  it('signs a linked account in: back to the page it started from, with a session that refreshes and ends', async () => {
    const carol = person('carol');
    const id = await createAccount(bed, 'carol');
    const linked = await link(bed, id, carol.sub);
    expect(linked.status).toBe(200);
    expect(linked.body).toMatchObject({ oidcIdentity: { issuer: bed.provider.issuer, subject: carol.sub } });

    const { landing, client } = await signInThroughProvider(bed, carol, '/studies?x=1#rounds');
    expect(refusal(landing)).toBeNull();
    expect(landing.pathname + landing.search + landing.hash).toBe('/studies?x=1#rounds');
    // The attempt's cookie is spent; the session's refresh cookie is set, as a password sign-in sets it.
    expect(client.cookiesOf(bed.hub.url).has('tessera_oidc')).toBe(false);
    const session = await meOf(bed, client);
    expect(session).toMatchObject({ status: 200, me: { username: 'carol', role: 'auditor' } });
    const succeeded = await lastAudit(bed, 'auth.login.succeeded');
    expect(succeeded.actor).toMatchObject({ type: 'user', id, name: 'carol' });
    expect(succeeded.details).toMatchObject({ method: 'oidc', issuer: bed.provider.issuer });

    // Revocation is the same as for password sessions: an administrator ends them, the refresh cookie is dead.
    expect((await api(bed.hub, 'DELETE', `/api/users/${id}/sessions`, { headers: bed.admin })).status).toBe(200);
    expect((await meOf(bed, client)).status).toBe(401);
  });

  it('lets a person with a pending temporary password in through the provider, and the temporary password dies', async () => {
    const nora = person('nora');
    const created = await api(bed.hub, 'POST', '/api/users', {
      headers: bed.admin,
      json: { username: 'nora', password: 'handed over on paper', role: 'auditor', mustChangePassword: true },
    });
    const id = (created.body as { id: string }).id;
    expect((await link(bed, id, nora.sub)).status).toBe(200);
    const { client, landing } = await signInThroughProvider(bed, nora);
    expect(refusal(landing)).toBeNull();
    const session = await meOf(bed, client);
    expect(session).toMatchObject({ status: 200, me: { username: 'nora', mustChangePassword: false } });
    expect((await lastAudit(bed, 'auth.login.succeeded')).details).toMatchObject({ replacedTemporary: true });
    const withTemporary = await api(bed.hub, 'POST', '/api/auth/login', {
      json: { username: 'nora', password: 'handed over on paper' },
    });
    expect(withTemporary.status).toBe(401);
  });

  it('refuses an identity linked to no account, saying so and recording who it was', async () => {
    const dave = person('dave');
    const { landing, client } = await signInThroughProvider(bed, dave);
    expect(refusal(landing)).toBe(OIDC_REFUSAL_MESSAGES.unlinked);
    expect(client.cookiesOf(bed.hub.url).has(REFRESH_COOKIE)).toBe(false);
    const failed = await lastAudit(bed, 'auth.login.failed');
    expect(failed.details).toMatchObject({
      method: 'oidc',
      reason: 'unlinked',
      issuer: bed.provider.issuer,
      oidcSubject: dave.sub,
      providerUsername: 'dave',
    });
    // No account appeared.
    const users = (await api(bed.hub, 'GET', '/api/users', { headers: bed.admin })).body as { username: string }[];
    expect(users.map((u) => u.username)).not.toContain('dave');
  });

  it('refuses a disabled account', async () => {
    const erin = person('erin');
    const id = await createAccount(bed, 'erin');
    expect((await link(bed, id, erin.sub)).status).toBe(200);
    expect((await signInThroughProvider(bed, erin)).landing.pathname).toBe('/studies');
    const disabled = await api(bed.hub, 'PATCH', `/api/users/${id}`, { headers: bed.admin, json: { disabled: true } });
    expect(disabled.status).toBe(200);
    const { landing, client } = await signInThroughProvider(bed, erin);
    expect(refusal(landing)).toBe(OIDC_REFUSAL_MESSAGES.disabled);
    expect(client.cookiesOf(bed.hub.url).has(REFRESH_COOKIE)).toBe(false);
    expect((await lastAudit(bed, 'auth.login.failed')).details).toMatchObject({ method: 'oidc', reason: 'disabled' });
  });

  it('refuses an answer that belongs to another attempt (state), or to none (no flow cookie)', async () => {
    const frank = person('frank');
    const id = await createAccount(bed, 'frank');
    expect((await link(bed, id, frank.sub)).status).toBe(200);
    // Attempt A reaches the provider only; attempt B (another browser) completes there and comes back.
    const browserA = new RedirectClient();
    const toProvider = await browserA.get(`${bed.hub.url}/api/auth/oidc/start`);
    expect(toProvider.status).toBe(303);
    expect(new URL(toProvider.headers.get('location')!).origin).toBe(bed.provider.issuer);
    const browserB = new RedirectClient();
    bed.provider.signInAs(frank);
    const atCallback = await browserB.follow(`${bed.hub.url}/api/auth/oidc/start`, (l) =>
      l.pathname.endsWith('/oidc/callback'),
    );
    const callback = atCallback.last.href;
    expect(atCallback.last.searchParams.get('code')).toBeTruthy();

    // B's answer in A's browser: A's cookie holds another state.
    const inA = await browserA.follow(callback, backOnConsole(bed.hub));
    expect(refusal(inA.last)).toBe(OIDC_REFUSAL_MESSAGES['checks-failed']);
    expect(browserA.cookiesOf(bed.hub.url).has(REFRESH_COOKIE)).toBe(false);
    const failed = await lastAudit(bed, 'auth.login.failed');
    expect(failed.details).toMatchObject({ method: 'oidc', reason: 'checks-failed' });
    expect(String(failed.details.problem)).toMatch(/state/);

    // B's answer with its state altered, in B's own browser.
    const forged = new URL(callback);
    forged.searchParams.set('state', 'forged-state');
    expect(refusal((await browserB.follow(forged.href, backOnConsole(bed.hub))).last)).toBe(
      OIDC_REFUSAL_MESSAGES['checks-failed'],
    );

    // The answer with no attempt cookie at all.
    const cookieless = await new RedirectClient().follow(callback, backOnConsole(bed.hub));
    expect(refusal(cookieless.last)).toBe(OIDC_REFUSAL_MESSAGES['flow-missing']);
  });

  it('refuses an ID token whose nonce is not the attempt’s', async () => {
    const gina = person('gina');
    const id = await createAccount(bed, 'gina');
    expect((await link(bed, id, gina.sub)).status).toBe(200);
    const browser = new RedirectClient();
    const start = await browser.get(`${bed.hub.url}/api/auth/oidc/start`);
    // Someone swaps the nonce on the way to the provider: the ID token then carries theirs, not the attempt's.
    const authorize = new URL(start.headers.get('location')!);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    authorize.searchParams.set('nonce', 'swapped-nonce');
    bed.provider.signInAs(gina);
    const { last } = await browser.follow(authorize.href, backOnConsole(bed.hub));
    expect(refusal(last)).toBe(OIDC_REFUSAL_MESSAGES['checks-failed']);
    const failed = await lastAudit(bed, 'auth.login.failed');
    expect(String(failed.details.problem)).toMatch(/nonce/);
    expect(browser.cookiesOf(bed.hub.url).has(REFRESH_COOKIE)).toBe(false);
  });

  it('links an identity to one account only', async () => {
    const hana = person('hana');
    const first = await createAccount(bed, 'hana');
    const second = await createAccount(bed, 'hana2');
    expect((await link(bed, first, hana.sub)).status).toBe(200);
    expect((await link(bed, second, hana.sub)).status).toBe(409);
    const unlinked = await api(bed.hub, 'DELETE', `/api/users/${first}/oidc`, { headers: bed.admin });
    expect(unlinked.body).toMatchObject({ oidcIdentity: null });
    expect(refusal((await signInThroughProvider(bed, hana)).landing)).toBe(OIDC_REFUSAL_MESSAGES.unlinked);
  });

  it('keeps an identity whole in the database: an issuer without a subject is refused', async () => {
    const id = await createAccount(bed, 'ines');
    await expect(
      bed.db.query(`UPDATE "users" SET "oidc_issuer" = $1 WHERE "id" = $2`, [bed.provider.issuer, id]),
    ).rejects.toThrow(/users_oidc_identity_check/);
  });
});

describe('OIDC sign-in with a claim-to-role mapping', () => {
  let bed: OidcBed;

  beforeAll(async () => {
    bed = await startBed('server', {
      TESSERA_OIDC_ROLE_CLAIM: 'groups',
      TESSERA_OIDC_ROLE_MAP: 'tessera-admins=admin,ward-audit=auditor',
    });
  });
  afterAll(async () => {
    await bed?.hub.dispose();
    await bed?.provider.close();
  });

  it('creates an account with the mapped role on first sign-in (audited by the system), and reuses it after', async () => {
    const ivan = person('ivan@hospital.example', ['ward-audit', 'nurses']);
    const first = await signInThroughProvider(bed, ivan);
    expect(refusal(first.landing)).toBeNull();
    expect(await meOf(bed, first.client)).toMatchObject({
      status: 200,
      me: { username: 'ivan-hospital.example', role: 'auditor' },
    });
    const created = await lastAudit(bed, 'account.created');
    expect(created.actor).toMatchObject({ type: 'system', id: 'oidc', name: bed.provider.issuer });
    expect(created.details).toMatchObject({ role: 'auditor', issuer: bed.provider.issuer, oidcSubject: ivan.sub });

    const again = await signInThroughProvider(bed, ivan);
    expect(await meOf(bed, again.client)).toMatchObject({ status: 200, me: { username: 'ivan-hospital.example' } });
    const users = (await api(bed.hub, 'GET', '/api/users', { headers: bed.admin })).body as { username: string }[];
    expect(users.filter((u) => u.username.startsWith('ivan'))).toHaveLength(1);
  });

  it('gives admin to a member of the administrators’ group, a fresh name when the suggested one is taken', async () => {
    await createAccount(bed, 'judy');
    const judy = person('judy', ['ward-audit', 'tessera-admins']);
    const { client } = await signInThroughProvider(bed, judy);
    expect(await meOf(bed, client)).toMatchObject({ status: 200, me: { username: 'judy-2', role: 'admin' } });
  });

  it('refuses a person in none of the mapped groups, creating nothing', async () => {
    const kim = person('kim', ['visitors']);
    const { landing } = await signInThroughProvider(bed, kim);
    expect(refusal(landing)).toBe(OIDC_REFUSAL_MESSAGES['no-mapped-role']);
    expect((await lastAudit(bed, 'auth.login.failed')).details).toMatchObject({ reason: 'no-mapped-role' });
    const users = (await api(bed.hub, 'GET', '/api/users', { headers: bed.admin })).body as { username: string }[];
    expect(users.map((u) => u.username)).not.toContain('kim');
  });
});
