import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const REPO = resolve(__dirname, '../../../..');
const CONSOLE = join(REPO, 'apps/console');

/** Debian's Chromium, which the browser tests drive through playwright-core (never a downloaded browser). */
export const CHROMIUM = '/usr/bin/chromium';

function newestMtime(paths: string[]): number {
  let newest = 0;
  const visit = (p: string) => {
    if (!existsSync(p)) return;
    const s = statSync(p);
    if (s.isDirectory()) for (const e of readdirSync(p)) visit(join(p, e));
    else newest = Math.max(newest, s.mtimeMs);
  };
  paths.forEach(visit);
  return newest;
}

/** Builds the console with Vite when its dist is missing or older than its sources (the hub serves that build). */
export async function ensureConsoleBuild(): Promise<void> {
  const index = join(CONSOLE, 'dist/index.html');
  const sources = ['src', 'public', 'index.html', 'vite.config.ts'].map((p) => join(CONSOLE, p));
  sources.push(join(REPO, 'libs/protocol/src'), join(REPO, 'libs/dp/src'));
  if (existsSync(index) && statSync(index).mtimeMs >= newestMtime(sources)) return;
  const vite = await import('vite');
  await vite.build({ configFile: join(CONSOLE, 'vite.config.ts'), logLevel: 'warn' });
}
