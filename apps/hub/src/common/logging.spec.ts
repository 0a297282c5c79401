import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { loadHubConfig } from '../config/hub-config';
import { correlationIdFor, hubLogger, requestLogging } from './logging';

interface Line {
  level: number;
  msg: string;
  reqId?: string;
  req?: { id?: string; method?: string; url?: string; remoteAddress?: string; headers?: Record<string, string> };
  res?: Record<string, unknown>;
  responseTime?: number;
  context?: string;
}

/**
 * A hub's request logging (its real root logger and middleware, ids given as hub.ts gives them) writing into
 * `lines`, serving on loopback. `/fail` answers 401, `/broken` 500, `/slow` never answers until the client leaves,
 * `/note` logs a line of its own through the request's logger.
 */
async function loggingServer(lines: string[]): Promise<Server> {
  const config = loadHubConfig({ TESSERA_DATA_DIR: '/tmp/tessera-logging-spec', TESSERA_LOG_LEVEL: 'info' });
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const logRequest = requestLogging(hubLogger(config, sink));
  const server = createServer((req, res) => {
    (req as IncomingMessage & { id?: string }).id = correlationIdFor(req, res);
    logRequest(req, res, () => {
      if (req.url === '/slow') return;
      if (req.url === '/note') (req as IncomingMessage & { log: { warn(m: string): void } }).log.warn('a note');
      res.setHeader('set-cookie', 'session=server-secret-cookie');
      res.statusCode = req.url === '/fail' ? 401 : req.url === '/broken' ? 500 : 200;
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

const parse = (lines: string[]): Line[] => lines.map((l) => JSON.parse(l) as Line);

describe('request logs (threat model P7)', () => {
  let server: Server | undefined;
  // Keep-alive connections would hold close() for seconds.
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()).closeAllConnections() : r())));

  it('blank out bearer tokens and cookies, in and out, on success and failure', async () => {
    const lines: string[] = [];
    server = await loggingServer(lines);
    const { port } = server.address() as AddressInfo;
    for (const path of ['/api/studies', '/fail']) {
      await fetch(`http://127.0.0.1:${port}${path}`, {
        headers: { authorization: 'Bearer eyJ.secret-access-token.sig', cookie: 'refresh=secret-refresh-cookie' },
      });
    }
    await new Promise((r) => setTimeout(r, 50));
    const text = lines.join('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const secret of ['secret-access-token', 'secret-refresh-cookie', 'server-secret-cookie']) {
      expect(text).not.toContain(secret);
    }
    const logged = parse(lines);
    // Headers are allow-listed: credentials are not even there to redact.
    expect(logged.every((l) => l.req?.headers && !('authorization' in l.req.headers))).toBe(true);
    expect(logged.every((l) => l.req?.headers && !('cookie' in l.req.headers))).toBe(true);
    expect(logged.map((l) => [l.req?.method, l.req?.url, l.res])).toEqual([
      ['GET', '/api/studies', { statusCode: 200 }],
      ['GET', '/fail', { statusCode: 401 }],
    ]);
  });

  it('keep the allow-listed headers that say which agent called', async () => {
    const lines: string[] = [];
    server = await loggingServer(lines);
    const { port } = server.address() as AddressInfo;
    await fetch(`http://127.0.0.1:${port}/silo/v1/me`, {
      headers: { 'x-tessera-agent': 'tessera-agent/0.1.0 linux-x64 node/20.20.2', 'x-api-key': 'invented-secret' },
    });
    await new Promise((r) => setTimeout(r, 50));
    const [line] = parse(lines);
    expect(line?.req?.headers?.['x-tessera-agent']).toBe('tessera-agent/0.1.0 linux-x64 node/20.20.2');
    expect(line?.req?.remoteAddress).toBe('127.0.0.1');
    expect(lines.join('\n')).not.toContain('invented-secret');
  });

  it('write one line per request, carrying its id, with a message and level from how it ended', async () => {
    const lines: string[] = [];
    server = await loggingServer(lines);
    const { port } = server.address() as AddressInfo;
    const ok = await fetch(`http://127.0.0.1:${port}/api/studies`, {
      headers: { 'x-correlation-id': 'trace-00000001' },
    });
    await fetch(`http://127.0.0.1:${port}/fail`);
    await fetch(`http://127.0.0.1:${port}/broken`);
    await fetch(`http://127.0.0.1:${port}/note`);
    const leaving = new AbortController();
    const slow = fetch(`http://127.0.0.1:${port}/slow`, { signal: leaving.signal }).catch(() => 'left');
    await new Promise((r) => setTimeout(r, 50));
    leaving.abort();
    expect(await slow).toBe('left');
    await new Promise((r) => setTimeout(r, 50));

    const logged = parse(lines);
    expect(logged.map((l) => [l.msg, l.level, l.req?.url, l.res?.statusCode])).toEqual([
      ['request completed', 30, '/api/studies', 200],
      ['request completed', 40, '/fail', 401],
      ['request errored', 50, '/broken', 500],
      ['a note', 40, undefined, undefined],
      ['request completed', 30, '/note', 200],
      ['request aborted', 30, '/slow', 200],
    ]);
    // The caller's correlation id is the request's id and the reqId of each of its lines (the note too).
    expect(ok.headers.get('x-correlation-id')).toBe('trace-00000001');
    expect(logged[0]).toMatchObject({ reqId: 'trace-00000001', req: { id: 'trace-00000001' } });
    expect(logged[3]?.reqId).toBe(logged[4]?.reqId);
    expect(new Set(logged.map((l) => l.reqId)).size).toBe(5);
    expect(logged.filter((l) => l.req).every((l) => typeof l.responseTime === 'number' && l.responseTime >= 0)).toBe(
      true,
    );
  });

  it('leave out health probes and metrics scrapes', async () => {
    const lines: string[] = [];
    server = await loggingServer(lines);
    const { port } = server.address() as AddressInfo;
    for (const path of ['/health', '/health/ready', '/metrics', '/api/silos'])
      await fetch(`http://127.0.0.1:${port}${path}`);
    await new Promise((r) => setTimeout(r, 50));
    expect(parse(lines).map((l) => l.req?.url)).toEqual(['/api/silos']);
  });
});
