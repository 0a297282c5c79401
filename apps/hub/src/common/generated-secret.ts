import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * A secret from configuration, or one generated on first boot and kept (mode 0600) under
 * `dataDir/secrets/<name>` so it survives restarts. The value is never logged.
 */
export function resolveGeneratedSecret(configured: string | undefined, dataDir: string, name: string): string {
  if (configured) return configured;
  const file = join(dataDir, 'secrets', name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const secret = randomBytes(48).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' });
  return secret;
}
