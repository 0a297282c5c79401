import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveGeneratedSecret } from './generated-secret';

describe('generated secrets (threat model O3)', () => {
  const dirs: string[] = [];
  const dataDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'tessera-secret-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('writes a generated secret readable by the hub user only, in a directory only it can enter', () => {
    const dir = dataDir();
    const secret = resolveGeneratedSecret(undefined, dir, 'jwt.secret');
    expect(secret).toMatch(/^[A-Za-z0-9_-]{64}$/); // 48 random bytes, base64url
    expect(statSync(join(dir, 'secrets')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'secrets', 'jwt.secret')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'secrets', 'jwt.secret'), 'utf8')).toBe(`${secret}\n`);
  });

  it('keeps the secret across restarts, and never writes one when it is configured', () => {
    const dir = dataDir();
    const first = resolveGeneratedSecret(undefined, dir, 'ca.passphrase');
    expect(resolveGeneratedSecret(undefined, dir, 'ca.passphrase')).toBe(first);
    const other = dataDir();
    expect(resolveGeneratedSecret('from-configuration', other, 'ca.passphrase')).toBe('from-configuration');
    expect(() => statSync(join(other, 'secrets'))).toThrow();
  });
});
