import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assetFile, contentTypeOf, isReservedPath } from './console-assets';

describe('console assets', () => {
  let root: string;
  let outside: string;
  beforeAll(() => {
    outside = mkdtempSync(join(tmpdir(), 'tessera-console-'));
    root = join(outside, 'dist');
    mkdirSync(join(root, 'assets'), { recursive: true });
    writeFileSync(join(root, 'index.html'), '<!doctype html>');
    writeFileSync(join(root, 'assets', 'index-abc.js'), 'export {}');
    writeFileSync(join(outside, 'secret.txt'), 'not for browsers');
  });
  afterAll(() => rmSync(outside, { recursive: true, force: true }));

  it('never serves under the API and machine endpoints', () => {
    for (const p of ['/api', '/api/studies', '/health', '/metrics', '/silo/v1/me', '/enroll/v1/ca', '/api.json']) {
      expect(isReservedPath(p), p).toBe(true);
    }
    for (const p of ['/', '/studies', '/studies/1', '/silos', '/audit', '/assets/index.js', '/apiary', '/healthy']) {
      expect(isReservedPath(p), p).toBe(false);
    }
  });

  it('finds built files and nothing outside the dist folder, however the path is spelled', () => {
    expect(assetFile(root, '/index.html')).toBe(join(root, 'index.html'));
    expect(assetFile(root, '/assets/index-abc.js')).toBe(join(root, 'assets', 'index-abc.js'));
    expect(assetFile(root, '/assets')).toBeUndefined(); // a directory
    expect(assetFile(root, '/missing.js')).toBeUndefined();
    for (const p of ['/../secret.txt', '/assets/../../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/%00']) {
      expect(assetFile(root, p), p).toBeUndefined();
    }
    expect(assetFile(root, '/%E0%A4%A')).toBeUndefined(); // malformed escape
  });

  it('names the content types a Vite build writes', () => {
    expect(contentTypeOf('a.js')).toBe('text/javascript; charset=utf-8');
    expect(contentTypeOf('a.CSS')).toBe('text/css; charset=utf-8');
    expect(contentTypeOf('favicon.svg')).toBe('image/svg+xml');
    expect(contentTypeOf('blob')).toBe('application/octet-stream');
  });
});
