import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHealth, healthUrl } from './healthcheck';

// The probe ships in the hub image (deploy/hub.Dockerfile's HEALTHCHECK runs dist/deploy/healthcheck.js), so its
// tests stay beside it; the checks of the deployment files themselves are in deploy/checks/.

describe("the hub image's health check", () => {
  let server: Server;
  let status = 200;
  beforeAll(async () => {
    server = createServer((req, res) => {
      res.statusCode = req.url === '/health' ? status : 404;
      res.end('{"status":"ok"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('probes loopback when the hub binds a wildcard address, else the configured host', () => {
    expect(healthUrl({ TESSERA_HOST: '0.0.0.0', TESSERA_PORT: '8080' })).toBe('http://127.0.0.1:8080/health');
    expect(healthUrl({ TESSERA_HOST: '::' })).toBe('http://127.0.0.1:8080/health');
    expect(healthUrl({ TESSERA_HOST: '10.1.2.3', TESSERA_PORT: '9000' })).toBe('http://10.1.2.3:9000/health');
    expect(healthUrl({ TESSERA_HOST: 'fd00::1' })).toBe('http://[fd00::1]:8080/health');
  });

  it('is healthy on 200 only, and unhealthy when nothing listens', async () => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
    expect((await checkHealth(url)).healthy).toBe(true);
    status = 503;
    const down = await checkHealth(url);
    expect(down.healthy).toBe(false);
    expect(down.detail).toContain('503');
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    expect((await checkHealth(`http://127.0.0.1:${port}/health`)).healthy).toBe(false);
  });
});
