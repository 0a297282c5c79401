import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pinoHttp, type Options } from 'pino-http';
import { afterEach, describe, expect, it } from 'vitest';
import { loadHubConfig } from '../config/hub-config';
import { loggerParams } from './logging';

/** A hub's request logger (its real options) writing into `lines`, serving on loopback. */
async function loggingServer(lines: string[]): Promise<Server> {
  const config = loadHubConfig({ TESSERA_DATA_DIR: '/tmp/tessera-logging-spec', TESSERA_LOG_LEVEL: 'info' });
  const options = loggerParams(config).pinoHttp as Options;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const log = pinoHttp(options, sink);
  const server = createServer((req, res) => {
    log(req, res);
    res.setHeader('set-cookie', 'session=server-secret-cookie');
    res.statusCode = req.url === '/fail' ? 401 : 200;
    res.end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

describe('request logs (threat model P7)', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

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
    const logged = lines.map(
      (l) =>
        JSON.parse(l) as {
          req?: { method?: string; url?: string; headers?: Record<string, string> };
          res?: Record<string, unknown>;
        },
    );
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
    const [line] = lines.map(
      (l) => JSON.parse(l) as { req: { headers: Record<string, string>; remoteAddress: string } },
    );
    expect(line?.req.headers['x-tessera-agent']).toBe('tessera-agent/0.1.0 linux-x64 node/20.20.2');
    expect(line?.req.remoteAddress).toBe('127.0.0.1');
    expect(lines.join('\n')).not.toContain('invented-secret');
  });
});
