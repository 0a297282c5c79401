import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { sendWebhook } from './webhook-outbox.service';
import { verifyWebhook, WEBHOOK_HEADERS } from './webhook-signature.util';

const META = { deliveryId: '8a3c1e2b-0f4d-4c6a-9b7e-5d2f1a0c3e4b', eventType: 'webhook.test', attempt: 3 };
let server: Server | undefined;

async function listen(handler: (req: IncomingMessage, body: string, res: import('node:http').ServerResponse) => void) {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, Buffer.concat(chunks).toString('utf8'), res));
  });
  await new Promise<void>((done) => server!.listen(0, '127.0.0.1', done));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((done) => (server ? server.close(done) : done(undefined)));
  server = undefined;
});

describe('sending one webhook', () => {
  it('posts the body signed, with the delivery id, event and attempt', async () => {
    let seen: { headers: IncomingMessage['headers']; body: string } | undefined;
    const url = await listen((req, body, res) => {
      seen = { headers: req.headers, body };
      res.writeHead(200).end('ok');
    });
    const outcome = await sendWebhook(url, 'whsec_unit', '{"a":1}', META);
    expect(outcome).toMatchObject({ statusCode: 200, error: null });
    expect(seen!.body).toBe('{"a":1}');
    expect(seen!.headers[WEBHOOK_HEADERS.id]).toBe(META.deliveryId);
    expect(seen!.headers[WEBHOOK_HEADERS.event]).toBe('webhook.test');
    expect(seen!.headers[WEBHOOK_HEADERS.attempt]).toBe('3');
    const verdict = verifyWebhook({
      secret: 'whsec_unit',
      body: seen!.body,
      timestampHeader: seen!.headers[WEBHOOK_HEADERS.timestamp] as string,
      signatureHeader: seen!.headers[WEBHOOK_HEADERS.signature] as string,
      nowSeconds: Math.floor(Date.now() / 1000),
    });
    expect(verdict).toEqual({ valid: true });
  });

  it('gives up on a receiver that does not answer in time', async () => {
    const url = await listen(() => undefined);
    const outcome = await sendWebhook(url, 'whsec_unit', '{}', META, 200);
    expect(outcome).toMatchObject({ statusCode: null, error: 'no answer within 200 ms' });
    expect(outcome.durationMs).toBeGreaterThanOrEqual(150);
  });

  it('ends at once when the hub stops', async () => {
    const url = await listen(() => undefined);
    const stopping = new AbortController();
    setTimeout(() => stopping.abort(), 100);
    const outcome = await sendWebhook(url, 'whsec_unit', '{}', META, 10_000, stopping.signal);
    expect(outcome).toMatchObject({ statusCode: null, error: 'the hub stopped during the request' });
    expect(outcome.durationMs).toBeLessThan(5_000);
  });

  it('names a refused connection', async () => {
    const url = await listen(() => undefined);
    await new Promise((done) => server!.close(done));
    server = undefined;
    const outcome = await sendWebhook(url, 'whsec_unit', '{}', META);
    expect(outcome.statusCode).toBeNull();
    expect(outcome.error).toMatch(/ECONNREFUSED/);
  });
});
