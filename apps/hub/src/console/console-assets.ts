import { existsSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';

/** Where `npm run build` puts the console (apps/console/dist), seen from apps/hub/src/console or apps/hub/dist/console. */
export const DEFAULT_CONSOLE_DIST = resolve(__dirname, '../../../console/dist');

/** Paths the console never answers: the API and the machine endpoints keep their own 404s. */
export const RESERVED_PREFIXES = ['/api', '/health', '/metrics', '/silo', '/enroll'] as const;

export function isReservedPath(path: string): boolean {
  return RESERVED_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`) || path.startsWith(`${p}.`));
}

/** Content types of the files a Vite build writes. */
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

export function contentTypeOf(file: string): string {
  return CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * The file under `root` that a URL path names, or undefined (no such file, a directory, or a path that would leave
 * `root`: `..` segments, encoded or not, never reach outside it).
 */
export function assetFile(root: string, urlPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0')) return undefined;
  const candidate = normalize(join(root, decoded));
  if (candidate !== root && !candidate.startsWith(root.endsWith(sep) ? root : root + sep)) return undefined;
  if (!existsSync(candidate)) return undefined;
  return statSync(candidate).isFile() ? candidate : undefined;
}

/** Answered at `/` when the console was not built: the hub still runs, the API still answers. */
export const CONSOLE_MISSING_HTML = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Tessera hub</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>Tessera hub</h1>
<p>The web console is not built on this machine. Run <code>npm run build</code> (or
<code>npm run build:console</code>) in the repository, then reload this page.</p>
<p>The API is available under <a href="/api/docs">/api/docs</a>.</p>
</body>
</html>
`;
