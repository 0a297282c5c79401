import { request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { serveSharedJson } from './shared-json';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** node:http, not fetch: fetch adds `cache-control: no-cache` to a request with If-None-Match, which defeats it. */
function get(server: Server, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  const { port } = server.address() as AddressInfo;
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

/** A view whose serialisations are counted (JSON.stringify calls toJSON once per serialisation). */
function countedView(rows: number[]) {
  const view = {
    serialised: 0,
    toJSON() {
      view.serialised += 1;
      return { rows };
    },
  };
  return view;
}

describe('serveSharedJson', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  /** An app answering with `res.json` as Nest does: `current` (shared), or a copy of it made per request. */
  async function serve(current: () => object, shared: WeakSet<object>): Promise<Server> {
    const app = express();
    serveSharedJson(app, (v): v is object => typeof v === 'object' && v !== null && shared.has(v));
    app.get('/shared', (_req, res) => void res.json(current()));
    app.get('/plain', (_req, res) => void res.json({ ...current() }));
    const listening = app.listen(0, '127.0.0.1');
    await new Promise<void>((r) => listening.once('listening', () => r()));
    return listening;
  }

  it('serialises a shared value once, sends the same bytes and ETag to every reader, and 304 on a match', async () => {
    const shared = new WeakSet<object>();
    const view = countedView([1, 2, 3]);
    shared.add(view);
    server = await serve(() => view, shared);

    const first = await get(server, '/shared');
    const second = await get(server, '/shared');
    expect(first.status).toBe(200);
    expect(JSON.parse(first.body)).toEqual({ rows: [1, 2, 3] });
    expect(first.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(first.headers['content-length']).toBe(String(Buffer.byteLength(first.body)));
    expect(second.body).toBe(first.body);
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^W\/"/);
    expect(second.headers.etag).toBe(etag);

    const revalidated = await get(server, '/shared', { 'if-none-match': etag });
    expect(revalidated.status).toBe(304);
    expect(revalidated.body).toBe('');
    const head = await get(server, '/shared', {}, 'HEAD');
    expect([head.status, head.body, head.headers.etag]).toEqual([200, '', etag]);
    expect(view.serialised).toBe(1);
  });

  it("gives a new value new bytes and a new ETag, equal to Express's own for the same JSON", async () => {
    const shared = new WeakSet<object>();
    let view = countedView([1]);
    shared.add(view);
    server = await serve(() => view, shared);
    const before = await get(server, '/shared');
    const plainBefore = await get(server, '/plain');
    expect(plainBefore.headers.etag).toBe(before.headers.etag);

    // A write: the cache computes a new object; the old one (and its bytes) is no longer served.
    view = countedView([1, 2]);
    shared.add(view);
    const stale = await get(server, '/shared', { 'if-none-match': before.headers.etag as string });
    expect(stale.status).toBe(200);
    expect(JSON.parse(stale.body)).toEqual({ rows: [1, 2] });
    expect(stale.headers.etag).not.toBe(before.headers.etag);
    expect((await get(server, '/shared', { 'if-none-match': stale.headers.etag as string })).status).toBe(304);
  });

  it('leaves values that are not shared to Express: serialised on every answer', async () => {
    const view = countedView([4]);
    server = await serve(() => view, new WeakSet());
    const a = await get(server, '/shared');
    const b = await get(server, '/shared', { 'if-none-match': a.headers.etag as string });
    expect(JSON.parse(a.body)).toEqual({ rows: [4] });
    expect(b.status).toBe(304);
    expect(view.serialised).toBe(2);
  });

  it('refuses an app whose JSON settings would make the kept bytes differ from res.json', () => {
    const app = express();
    app.set('json spaces', 2);
    expect(() => serveSharedJson(app, (v): v is object => v !== v)).toThrow(/json spaces/);
  });
});
