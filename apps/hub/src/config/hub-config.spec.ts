import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from './config.schema';
import { ConfigError, configurationTable, describeConfig, loadHubConfig } from './hub-config';

function problemsOf(env: Record<string, string>): { variable: string; message: string }[] {
  try {
    loadHubConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('hub configuration', () => {
  it('applies the documented defaults to an empty environment', () => {
    const config = loadHubConfig({});
    expect(config.port).toBe(8080);
    expect(config.siloPort).toBe(8443);
    expect(config.host).toBe('127.0.0.1');
    expect(config.databaseUrl).toBeUndefined();
    expect(config.runMigrations).toBe(true);
    expect(config.sessionTtlSeconds).toBe(900);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names each bad variable, all at once', () => {
    const problems = problemsOf({ TESSERA_PORT: 'eighty', TESSERA_LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x' });
    expect(problems.map((p) => p.variable).sort()).toEqual(['DATABASE_URL', 'TESSERA_LOG_LEVEL', 'TESSERA_PORT']);
  });

  it('never echoes a secret value in an error', () => {
    const secret = 'short-secret';
    const problems = problemsOf({ TESSERA_JWT_SECRET: secret });
    expect(problems[0]!.variable).toBe('TESSERA_JWT_SECRET');
    expect(JSON.stringify(problems)).not.toContain(secret);
    const nonSecret = problemsOf({ TESSERA_PORT: '99999' });
    expect(nonSecret[0]!.message).toContain('99999');
  });

  it('requires the first administrator password with the username', () => {
    expect(problemsOf({ TESSERA_ADMIN_USERNAME: 'root' })).toEqual([
      { variable: 'TESSERA_ADMIN_PASSWORD', message: 'is required when TESSERA_ADMIN_USERNAME is set' },
    ]);
  });

  it('redacts secrets when the configuration is described for logs', () => {
    const config = loadHubConfig({
      DATABASE_URL: 'postgres://u:hunter2@db:5432/tessera',
      TESSERA_JWT_SECRET: 'x'.repeat(40),
    });
    const shown = JSON.stringify(describeConfig(config));
    expect(shown).not.toContain('hunter2');
    expect(shown).not.toContain('x'.repeat(40));
    expect(describeConfig(config).DATABASE_URL).toBe('[secret]');
  });

  it('documents every variable in the table and in docs/configuration.md', () => {
    const table = configurationTable();
    for (const v of Object.values(CONFIG_VARIABLES)) {
      expect(v.description.length).toBeGreaterThan(10);
      expect(table).toContain(`\`${v.name}\``);
    }
    const doc = readFileSync(resolve(__dirname, '../../../../docs/configuration.md'), 'utf8');
    expect(doc).toContain(table);
  });
});
