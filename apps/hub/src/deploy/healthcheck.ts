#!/usr/bin/env node
import { request } from 'node:http';

/**
 * The hub image's HEALTHCHECK (deploy/hub.Dockerfile): GET /health on the console/API listener, which answers 200
 * only when the hub and its database do. Kept free of imports beyond node:http so that it starts in milliseconds.
 */
export function healthUrl(env: NodeJS.ProcessEnv): string {
  const configured = env.TESSERA_HOST ?? '127.0.0.1';
  // A wildcard bind address is not a destination: the check runs inside the container, so loopback reaches it.
  const host = configured === '0.0.0.0' || configured === '::' || configured === '' ? '127.0.0.1' : configured;
  const port = env.TESSERA_PORT ?? '8080';
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}/health`;
}

/** Resolves with whether the hub answered 200 within `timeoutMs`, and what it said otherwise. */
export function checkHealth(url: string, timeoutMs = 4000): Promise<{ healthy: boolean; detail: string }> {
  return new Promise((done) => {
    const req = request(url, { method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk.slice(0, 2000)));
      res.on('end', () =>
        done({ healthy: res.statusCode === 200, detail: `HTTP ${res.statusCode ?? 0} ${body.slice(0, 300)}` }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => done({ healthy: false, detail: err.message }));
    req.end();
  });
}

if (require.main === module) {
  const url = healthUrl(process.env);
  void checkHealth(url).then(({ healthy, detail }) => {
    if (!healthy) process.stderr.write(`hub health check ${url}: ${detail}\n`);
    process.exitCode = healthy ? 0 : 1;
  });
}
