import { setFlagsFromString } from 'node:v8';
import { PinoLogger } from 'nestjs-pino';
import { ConfigError, describeConfig, loadHubConfig } from './config/hub-config';
import { startHub, type RunningHub } from './hub';

/**
 * Starts the hub and stops it gracefully on SIGTERM or SIGINT. Exit code 2 for bad configuration, 1 when it cannot
 * start (a port in use, the embedded database held by another hub), naming the cause on stderr.
 */
export async function serveUntilSignalled(env: NodeJS.ProcessEnv = process.env): Promise<RunningHub | undefined> {
  let config;
  try {
    config = loadHubConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`tessera-hub: ${err.message}\n`);
      process.exitCode = 2;
      return undefined;
    }
    throw err;
  }
  if (!config.databaseUrl) {
    // The embedded database is 9 MB of WebAssembly. V8 compiles it once with its baseline compiler (Liftoff), then
    // recompiles the busy functions with its optimising one on background threads, whose allocations stay resident
    // in the C library's heaps: about 75 MiB of the hub process for statements that are small and few (the hub's
    // rows are metadata). The hub process runs no other WebAssembly; set before the database thread compiles it.
    setFlagsFromString('--liftoff-only');
  }
  let hub: RunningHub;
  try {
    hub = await startHub(config);
  } catch (err) {
    process.stderr.write(`tessera-hub: could not start: ${(err as Error).message}\n`);
    process.exitCode = 1;
    // startHub has closed what it opened, so the process ends by itself; should anything still hold the event loop
    // (a library's timer), a hub that failed to start must not linger: leave anyway after a moment.
    setTimeout(() => process.exit(1), 2_000).unref();
    return undefined;
  }
  const log = await hub.app.resolve(PinoLogger);
  log.info({ config: describeConfig(config), database: hub.database.kind }, `hub listening on ${hub.url}`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal} received: finishing in-flight requests, then closing`);
    hub.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`tessera-hub: shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  if (hub.database.kind === 'embedded') {
    // Without its database thread the hub can only fail every request: exit, so a supervisor restarts it whole.
    void hub.database.lost.then((err) => {
      if (stopping) return;
      process.stderr.write(`tessera-hub: ${err.message}; exiting\n`);
      process.exit(1);
    });
  }
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return hub;
}
