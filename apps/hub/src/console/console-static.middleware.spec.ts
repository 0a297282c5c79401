import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express, { type Request } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markListener } from '../auth/listener';
import { ConsoleStaticMiddleware } from './console-static.middleware';

/** The middleware in front of a stand-in for the hub's routes (which answer 404 JSON for anything unknown). */
function appWith(root: string, listener: 'people' | 'silo' = 'people') {
  const app = express();
  app.use((req, _res, next) => {
    markListener(req as Request, listener);
    next();
  });
  const middleware = new ConsoleStaticMiddleware(root);
  app.use((req, res, next) => middleware.use(req, res, next));
  app.get('/api/studies', (_req, res) => res.json([]));
  app.use((req, res) => res.status(404).json({ error: 'NOT_FOUND', message: `Cannot ${req.method} ${req.path}` }));
  return app;
}

describe('console static middleware', () => {
  let dir: string;
  let dist: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-console-'));
    dist = join(dir, 'dist');
    mkdirSync(join(dist, 'assets'), { recursive: true });
    writeFileSync(join(dist, 'index.html'), '<!doctype html><title>console</title>');
    writeFileSync(join(dist, 'assets', 'index-abc.js'), 'export {}');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serves the built files, with index.html for the client-side routes of a browser', async () => {
    const app = appWith(dist);
    const index = await request(app).get('/').set('accept', 'text/html');
    expect(index.status).toBe(200);
    expect(index.text).toContain('<title>console</title>');
    expect(index.headers['cache-control']).toBe('no-cache');
    const route = await request(app).get('/studies/42').set('accept', 'text/html,application/xhtml+xml');
    expect(route.text).toContain('<title>console</title>');
    const asset = await request(app).get('/assets/index-abc.js');
    expect(asset.status).toBe(200);
    expect(asset.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(asset.headers['cache-control']).toContain('immutable');
  });

  it('leaves the API, unknown files, other methods and the silo listener to the routes', async () => {
    const app = appWith(dist);
    expect((await request(app).get('/api/studies').set('accept', 'text/html')).body).toEqual([]);
    const unknownApi = await request(app).get('/api/nothing').set('accept', 'text/html');
    expect(unknownApi.status).toBe(404);
    expect(unknownApi.body).toMatchObject({ error: 'NOT_FOUND' });
    expect((await request(app).get('/missing.js').set('accept', '*/*')).status).toBe(404);
    expect((await request(app).post('/studies').set('accept', 'text/html')).status).toBe(404);
    const silo = await request(appWith(dist, 'silo')).get('/').set('accept', 'text/html');
    expect(silo.status).toBe(404);
    expect(silo.body).toMatchObject({ error: 'NOT_FOUND' });
  });

  it('says how to build the console when it was not built', async () => {
    const res = await request(appWith(join(dir, 'absent')))
      .get('/')
      .set('accept', 'text/html');
    expect(res.status).toBe(200);
    expect(res.text).toContain('npm run build');
  });
});
