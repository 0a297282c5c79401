#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { loadHubConfig } from '../config/hub-config';
import { startHub } from '../hub';

/**
 * `npm run demo`: the hub on the embedded database with a first administrator, checked end to end through its own
 * API. (The federated study demo with four hospital agents replaces this once studies exist.)
 */
async function main(): Promise<void> {
  const opts = new Command('demo')
    .option('--data-dir <dir>', 'hub data directory', '.tessera/demo')
    .option('--port <port>', 'console/API port', '8080')
    .option('--once', 'start, check, print the summary and stop (no serving)')
    .parse(process.argv)
    .opts<{ dataDir: string; port: string; once?: boolean }>();
  const password = randomBytes(12).toString('base64url');
  const config = loadHubConfig({
    ...process.env,
    TESSERA_DATA_DIR: resolve(opts.dataDir),
    TESSERA_PORT: opts.port,
    TESSERA_SILO_PORT: '0',
    TESSERA_ENROLL_PORT: '0',
    TESSERA_LOG_LEVEL: process.env.TESSERA_LOG_LEVEL ?? 'warn',
    TESSERA_ADMIN_USERNAME: 'admin',
    TESSERA_ADMIN_PASSWORD: password,
  });
  const started = Date.now();
  const hub = await startHub(config);
  const login = await fetch(`${hub.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password }),
  });
  const firstRun = login.status === 200;
  const health = (await (await fetch(`${hub.url}/health`)).json()) as { status: string };
  const lines = [
    '',
    `Tessera hub is up on ${hub.url} (embedded PostgreSQL in ${config.dataDir}), started in ${Date.now() - started} ms.`,
    `  health:   ${health.status}`,
    `  API docs: ${hub.url}/api/docs`,
    firstRun
      ? `  sign in:  admin / ${password}   (first run: this administrator was just created)`
      : '  sign in:  with the administrator created on the first run of this data directory',
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
  if (opts.once) {
    await hub.close();
    return;
  }
  process.stdout.write('Press Ctrl-C to stop.\n');
  const stop = () => void hub.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`demo: ${(err as Error).message}\n`);
  process.exit(1);
});
