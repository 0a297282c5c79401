import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A TCP port free on loopback now (for a listener whose address must be known before it starts). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => done(port));
    });
  });
}

/** A person the test provider knows: its `sub`, the name it suggests and its groups. */
export interface ProviderPerson {
  sub: string;
  preferredUsername: string;
  groups: string[];
}

/** The client the hub is registered as. */
export interface ProviderClient {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

/** A real OpenID Connect provider (node-oidc-provider) on loopback, with a login step the test drives. */
export interface TestOidcProvider {
  readonly issuer: string;
  readonly client: ProviderClient;
  /** Who signs in at the provider in the next attempt (the provider's login page, answered by the test). */
  signInAs(person: ProviderPerson): void;
  close(): Promise<void>;
}

interface Interaction {
  uid: string;
  prompt: { name: string };
  params: { client_id?: unknown; scope?: unknown };
}

interface GrantInstance {
  addOIDCScope(scope: string): void;
  save(): Promise<string>;
}

/** The few members of node-oidc-provider's Provider class these tests use (the package ships no types). */
interface OidcProvider {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
  interactionFinished(req: IncomingMessage, res: ServerResponse, result: object): Promise<void>;
  Grant: new (init: { accountId: string; clientId: string }) => GrantInstance;
}
type OidcProviderClass = new (issuer: string, configuration: object) => OidcProvider;

/**
 * Starts node-oidc-provider on a free loopback port, registering one confidential client (client_secret_basic,
 * authorization code, PKCE required). ID tokens carry `preferred_username` and `groups` (scopes profile and groups).
 * The login page is the test's: an interaction signs in the person set by `signInAs` and grants the scopes asked.
 */
export async function startTestOidcProvider(redirectUri: string): Promise<TestOidcProvider> {
  // A variable specifier: the package has no type declarations; the interface above says what is used.
  const specifier = 'oidc-provider';
  const { default: Provider } = (await import(specifier)) as { default: OidcProviderClass };
  const server: Server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = { clientId: 'tessera-hub', clientSecret: randomBytes(24).toString('hex'), redirectUri };
  const people = new Map<string, ProviderPerson>();
  let next: ProviderPerson | undefined;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: client.clientId,
        client_secret: client.clientSecret,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    findAccount: (_ctx: unknown, id: string) => {
      const person = people.get(id);
      if (!person) return undefined;
      return {
        accountId: id,
        claims: () => ({ sub: id, preferred_username: person.preferredUsername, groups: person.groups }),
      };
    },
    claims: { openid: ['sub'], profile: ['preferred_username'], groups: ['groups'] },
    scopes: ['openid', 'profile', 'groups'],
    // The claims of the scopes asked go into the ID token itself, as many hospital providers configure it.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    ttl: { Interaction: 600, Grant: 600, Session: 600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
  });
  const handle = provider.callback();

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!req.url?.startsWith('/interaction/')) {
      handle(req, res);
      return;
    }
    void (async () => {
      const interaction = await provider.interactionDetails(req, res);
      const person = next;
      if (!person) throw new Error('the test did not say who signs in at the provider');
      people.set(person.sub, person);
      const grant = new provider.Grant({ accountId: person.sub, clientId: String(interaction.params.client_id) });
      grant.addOIDCScope(String(interaction.params.scope));
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { login: { accountId: person.sub }, consent: { grantId } });
    })().catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });

  return {
    issuer,
    client,
    signInAs(person) {
      next = person;
    },
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

/**
 * A browser's part of a redirect flow, without a browser: follows redirects by hand (so the test sees each hop),
 * keeping cookies per host:port as a browser keeps them per site (paths ignored; the names do not clash).
 */
export class RedirectClient {
  private readonly jars = new Map<string, Map<string, string>>();

  /** Cookies held for an origin, by name. */
  cookiesOf(origin: string): ReadonlyMap<string, string> {
    return this.jars.get(new URL(origin).host) ?? new Map();
  }

  setCookie(origin: string, name: string, value: string): void {
    this.jar(origin).set(name, value);
  }

  /** One request: sends the origin's cookies, stores the ones set. */
  async get(url: string): Promise<Response> {
    const cookies = [...this.jar(url)].map(([n, v]) => `${n}=${v}`).join('; ');
    const res = await fetch(url, { redirect: 'manual', headers: cookies ? { cookie: cookies } : {} });
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';').map((p) => p.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const expired = attributes.some((a) => /^max-age=0$/i.test(a) || /^expires=Thu, 01 Jan 1970/i.test(a));
      if (expired || value === '') this.jar(url).delete(name);
      else this.jar(url).set(name, value);
    }
    return res;
  }

  /**
   * Follows redirects from `url` until `stop` says a location is the one the test wants to look at (not requested)
   * or an answer is not a redirect. Answers each hop's location.
   */
  async follow(
    url: string,
    stop: (location: URL) => boolean,
  ): Promise<{ hops: URL[]; last: URL; response?: Response }> {
    const hops: URL[] = [];
    let current = new URL(url);
    for (let i = 0; i < 20; i++) {
      hops.push(current);
      if (i > 0 && stop(current)) return { hops, last: current };
      const res = await this.get(current.href);
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) return { hops, last: current, response: res };
      await res.arrayBuffer();
      current = new URL(location, current);
    }
    throw new Error(`more than 20 redirects from ${url}`);
  }

  private jar(url: string): Map<string, string> {
    const host = new URL(url).host;
    let jar = this.jars.get(host);
    if (!jar) {
      jar = new Map();
      this.jars.set(host, jar);
    }
    return jar;
  }
}
