import { request as httpsRequest } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SILO_API } from '@tessera/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVERTISED_IDLE_SECONDS, SERVER_IDLE_MS } from './hub';
import { HubPkiService } from './pki/hub-pki.service';
import { ADMIN, signIn, startTestHub, type TestHub } from './testing/test-hub.test-util';
import { TestSilo } from './testing/test-silo.test-util';

// The last one: Express matches routes case-insensitively, so the guard must too.
const DOC_PATHS = ['/api/docs', '/api/docs/openapi.json', '/api/docs-yaml', '/API/Docs/openapi.json'];
const RATE_LIMIT = 3;

async function peopleGet(hub: TestHub, path: string, headers: Record<string, string> = {}): Promise<number> {
  return (await fetch(`${hub.url}${path}`, { headers })).status;
}

/** Status of a request to the enrollment listener (TLS with the hub certificate, no client certificate). */
function enrollCall(hub: TestHub, method: string, path: string, headers: Record<string, string> = {}): Promise<number> {
  const ca = hub.app.get(HubPkiService).serverCredentials().caCertificatePem;
  return new Promise((done, fail) => {
    const req = httpsRequest(
      new URL(path, hub.enrollUrl),
      { method, agent: false, ca: [ca], headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        res.resume();
        res.on('end', () => done(res.statusCode ?? 0));
      },
    );
    req.on('error', fail);
    if (method === 'POST') req.write('{}');
    req.end();
  });
}

function login(hub: TestHub, forwardedFor: string): Promise<number> {
  return fetch(`${hub.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor },
    body: JSON.stringify({ username: 'nobody', password: 'not the password at all' }),
  }).then((r) => r.status);
}

function enroll(hub: TestHub, forwardedFor: string): Promise<number> {
  return enrollCall(hub, 'POST', SILO_API.enroll, { 'x-forwarded-for': forwardedFor });
}

/** Sends `count` requests one after the other, each claiming another client address (198.51.100.0/24, TEST-NET-2). */
async function rotating(count: number, send: (forwardedFor: string) => Promise<number>): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) statuses.push(await send(`198.51.100.${i + 1}`));
  return statuses;
}

describe('the OpenAPI description', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub('server');
  });
  afterAll(() => hub?.dispose());

  it('is served on the people listener only', async () => {
    for (const path of DOC_PATHS) expect(await peopleGet(hub, path), path).toBe(200);
    for (const path of DOC_PATHS) expect(await enrollCall(hub, 'GET', path), `enrollment ${path}`).toBe(404);
    const silo = await TestSilo.enroll(hub, await signIn(hub, ADMIN.username, ADMIN.password), 'Docs Hospital');
    for (const path of DOC_PATHS) expect((await silo.call('GET', path)).status, `silo ${path}`).toBe(404);
  });
});

describe('X-Forwarded-For and the rate limits', () => {
  describe('people listener behind a trusted proxy, enrollment listener without one', () => {
    let hub: TestHub;
    beforeAll(async () => {
      hub = await startTestHub('server', {
        env: { TESSERA_LOGIN_RATE_LIMIT: String(RATE_LIMIT), TESSERA_TRUSTED_PROXIES: '127.0.0.1,::1' },
      });
    });
    afterAll(() => hub?.dispose());

    it('honours the address a trusted proxy forwards: each client has its own login budget', async () => {
      expect(await rotating(RATE_LIMIT + 2, (xff) => login(hub, xff))).not.toContain(429);
      // One forwarded client is limited like any other.
      const same = await rotating(RATE_LIMIT + 1, () => login(hub, '203.0.113.50'));
      expect(same.slice(0, RATE_LIMIT)).toEqual(Array(RATE_LIMIT).fill(401));
      expect(same[RATE_LIMIT]).toBe(429);
    });

    it('ignores X-Forwarded-For on the enrollment listener, whose proxies are configured apart', async () => {
      const statuses = await rotating(RATE_LIMIT + 2, (xff) => enroll(hub, xff));
      expect(statuses.slice(0, RATE_LIMIT)).not.toContain(429);
      expect(statuses.slice(RATE_LIMIT)).toEqual([429, 429]);
    });
  });

  describe('people listener reached by an untrusted peer, enrollment listener behind a trusted proxy', () => {
    let hub: TestHub;
    beforeAll(async () => {
      hub = await startTestHub('server', {
        env: {
          TESSERA_LOGIN_RATE_LIMIT: String(RATE_LIMIT),
          // The test client connects from loopback, which is outside this range: its header must be ignored.
          TESSERA_TRUSTED_PROXIES: '10.0.0.0/8',
          TESSERA_ENROLL_TRUSTED_PROXIES: '127.0.0.1,::1',
        },
      });
    });
    afterAll(() => hub?.dispose());

    it('does not let a rotating X-Forwarded-For escape the login limit', async () => {
      const statuses = await rotating(RATE_LIMIT + 2, (xff) => login(hub, xff));
      expect(statuses.slice(0, RATE_LIMIT)).toEqual(Array(RATE_LIMIT).fill(401));
      expect(statuses.slice(RATE_LIMIT)).toEqual([429, 429]);
    });

    it('honours the enrollment proxy: each forwarded client has its own enrollment budget', async () => {
      expect(await rotating(RATE_LIMIT + 2, (xff) => enroll(hub, xff))).not.toContain(429);
    });
  });
});

describe('a hub that cannot open a listener (in-process)', () => {
  let taken: Server;
  let port: number;
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-listen-'));
  beforeAll(async () => {
    taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    port = (taken.address() as { port: number }).port;
  });
  afterAll(() => {
    taken.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('fails naming the listener and releases the embedded database for the next start', async () => {
    await expect(startTestHub('embedded', { dataDir, env: { TESSERA_ENROLL_PORT: String(port) } })).rejects.toThrow(
      `the enrollment listener cannot listen on 127.0.0.1:${port}: the address is already in use`,
    );
    // Same process: the data-directory lock would refuse this start had the failed one kept it.
    const hub = await startTestHub('embedded', { dataDir });
    try {
      expect(await peopleGet(hub, '/health')).toBe(200);
    } finally {
      await hub.stop();
    }
  });
});

describe('idle keep-alive connections', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub('embedded');
  });
  afterAll(async () => {
    await hub?.stop();
  });

  /** Sends one GET on the socket and resolves with the response's head once its body (Content-Length) is in. */
  function getOn(socket: Socket, path: string): Promise<string> {
    return new Promise((done, fail) => {
      let text = '';
      const onData = (chunk: Buffer) => {
        text += chunk.toString('latin1');
        const end = text.indexOf('\r\n\r\n');
        const length = /content-length: *(\d+)/i.exec(text.slice(0, end));
        if (end >= 0 && length && text.length >= end + 4 + Number(length[1])) {
          socket.off('data', onData);
          socket.off('close', onClose);
          done(text.slice(0, end));
        }
      };
      const onClose = () => fail(new Error(`the hub closed the connection before answering ${path}`));
      socket.on('data', onData);
      socket.once('close', onClose);
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`);
    });
  }

  it('advertises 5 s but keeps an idle connection longer, so a client reusing it at its limit never meets a closing socket', async () => {
    const { port } = new URL(hub.url);
    const socket = connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    try {
      const first = await getOn(socket, '/health');
      expect(first).toMatch(/^HTTP\/1\.1 200/);
      expect(first).toMatch(new RegExp(`^keep-alive: timeout=${ADVERTISED_IDLE_SECONDS}\\r?$`, 'im'));
      // Idle past what the hub advertises (a client following the hint would have closed by now; a late one reuses).
      await new Promise((r) => setTimeout(r, ADVERTISED_IDLE_SECONDS * 1000 + 1500));
      expect(socket.destroyed).toBe(false);
      expect(await getOn(socket, '/health')).toMatch(/^HTTP\/1\.1 200/);
      expect(SERVER_IDLE_MS).toBeGreaterThan(ADVERTISED_IDLE_SECONDS * 1000 * 2);
    } finally {
      socket.destroy();
    }
  });
});
