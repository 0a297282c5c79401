import { createReadStream } from 'node:fs';
import { Inject, Injectable, Optional, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { listenerOf } from '../auth/listener';
import { assetFile, CONSOLE_MISSING_HTML, contentTypeOf, DEFAULT_CONSOLE_DIST, isReservedPath } from './console-assets';

/** Injection token: the directory of the built console (defaults to apps/console/dist). */
export const CONSOLE_DIST_DIR = Symbol('CONSOLE_DIST_DIR');

/**
 * Serves the built web console on the console/API listener: its files as they are, and index.html for any other
 * GET that accepts HTML (the single-page app routes on the client). It never answers under /api, /health,
 * /metrics, /silo or /enroll, nor on the silo and enrollment listeners, nor any method but GET and HEAD: those
 * fall through to the routes (and their AccessGuard) untouched. The console's files are public by nature (no
 * data in them); everything they show comes from the API with a bearer token.
 */
@Injectable()
export class ConsoleStaticMiddleware implements NestMiddleware {
  private readonly root: string;

  constructor(@Optional() @Inject(CONSOLE_DIST_DIR) root?: string) {
    this.root = root ?? DEFAULT_CONSOLE_DIST;
  }

  use(req: Request, res: Response, next: NextFunction): void {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || listenerOf(req) !== 'people') return next();
    const path = req.path;
    if (isReservedPath(path)) return next();

    const file = path === '/' ? undefined : assetFile(this.root, path);
    if (file) {
      // Vite names built assets by content hash: they never change under the same name.
      const immutable = path.startsWith('/assets/');
      return this.send(req, res, file, immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    }
    if (!acceptsHtml(req)) return next();
    const index = assetFile(this.root, '/index.html');
    if (!index) {
      res
        .status(path === '/' ? 200 : 404)
        .type('html')
        .setHeader('cache-control', 'no-cache');
      res.end(req.method === 'HEAD' ? undefined : CONSOLE_MISSING_HTML);
      return;
    }
    return this.send(req, res, index, 'no-cache');
  }

  private send(req: Request, res: Response, file: string, cacheControl: string): void {
    res.status(200);
    res.setHeader('content-type', contentTypeOf(file));
    res.setHeader('cache-control', cacheControl);
    res.setHeader('x-content-type-options', 'nosniff');
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file)
      .on('error', () => {
        if (!res.headersSent) res.status(500);
        res.end();
      })
      .pipe(res);
  }
}

/** A browser navigating (Accept: text/html), not a script fetching JSON or an image. */
function acceptsHtml(req: Request): boolean {
  const accept = req.headers.accept ?? '';
  return accept.includes('text/html');
}
