import { join } from 'node:path';
import { loadHubConfig } from '../config/hub-config';
import { startHub, type RunningHub } from '../hub';

/** A hub of its own for the demo: embedded PostgreSQL under `root/hub`, every listener on a free port. */
export function startDemoHub(root: string, adminPassword: string): Promise<RunningHub> {
  return startHub(
    loadHubConfig({
      TESSERA_DATA_DIR: join(root, 'hub'),
      TESSERA_PORT: '0',
      TESSERA_SILO_PORT: '0',
      TESSERA_ENROLL_PORT: '0',
      TESSERA_LOG_LEVEL: process.env.TESSERA_LOG_LEVEL ?? 'warn',
      TESSERA_ADMIN_USERNAME: 'admin',
      TESSERA_ADMIN_PASSWORD: adminPassword,
    }),
    { logger: false },
  );
}

/** Socket errors after which a read is sent again: the connection closed under it, not an answer of the hub. */
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/**
 * fetch, with a GET or HEAD sent once more on a fresh connection when the kept-alive one it went out on was closed
 * under it. On a loaded machine the hub's keep-alive timer (5 s) can fire in the same turn as a request that reuses
 * the connection, and fetch reports "fetch failed": a read is safe to repeat; a write is never sent twice.
 */
async function fetchOnce(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    const method = (init.method ?? 'GET').toUpperCase();
    const code = ((err as { cause?: { code?: unknown } }).cause ?? {}).code;
    if ((method !== 'GET' && method !== 'HEAD') || typeof code !== 'string' || !RESET_CODES.has(code)) throw err;
    return fetch(url, init);
  }
}

/** Sign in again after this long, before the hub's 5-minute access tokens expire (a 401 also renews). */
const TOKEN_RENEWAL_MS = 4 * 60_000;

/** The administrator at the console's API: the demo does through it what a person does in the console. */
export class DemoAdmin {
  /** When the token was issued (ms): it is renewed before the hub's access-token lifetime (5 minutes) runs out. */
  private issuedAt = Date.now();

  private constructor(
    readonly hub: RunningHub,
    private token: string,
    private readonly password: string,
  ) {}

  static async signIn(hub: RunningHub, password: string): Promise<DemoAdmin> {
    return new DemoAdmin(hub, await DemoAdmin.login(hub, password), password);
  }

  private static async login(hub: RunningHub, password: string): Promise<string> {
    const login = (await (
      await fetch(`${hub.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password }),
      })
    ).json()) as { accessToken: string };
    return login.accessToken;
  }

  /**
   * A request with the current access token; once its short life is over (the hub answers 401), the administrator
   * signs in again and the request is sent once more: a demo outlives an access token.
   */
  private async send(path: string, init: RequestInit = {}): Promise<Response> {
    if (Date.now() - this.issuedAt > TOKEN_RENEWAL_MS) await this.renew();
    const attempt = () =>
      fetchOnce(`${this.hub.url}${path}`, {
        ...init,
        headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${this.token}` },
      });
    const res = await attempt();
    if (res.status !== 401) return res;
    await this.renew();
    return attempt();
  }

  private async renew(): Promise<void> {
    this.token = await DemoAdmin.login(this.hub, this.password);
    this.issuedAt = Date.now();
  }

  /** One API call: JSON answers parsed, anything else as bytes; a non-2xx answer throws with its body. */
  async api<T>(method: string, path: string, json?: unknown): Promise<T> {
    const res = await this.send(path, {
      method,
      headers: json !== undefined ? { 'content-type': 'application/json' } : {},
      ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    const type = res.headers.get('content-type') ?? '';
    return (type.includes('json') ? await res.json() : Buffer.from(await res.arrayBuffer())) as T;
  }

  /** The exact bytes of a GET (a signed report must not be re-encoded); `what` names it in the error. */
  async bytes(path: string, what: string): Promise<Buffer> {
    const res = await this.send(path);
    if (!res.ok) throw new Error(`${what}: ${res.status} ${await res.text()}`);
    return Buffer.from(await res.arrayBuffer());
  }
}
