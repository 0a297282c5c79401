import { spawnSync } from 'node:child_process';
import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** The embedded database's data directory is locked by another process (a running hub, typically). */
export class DataDirInUseError extends Error {
  override readonly name = 'DataDirInUseError';
}

/** flock(1) exits with this when the lock is held elsewhere (chosen so it cannot be mistaken for its own errors). */
const CONFLICT_EXIT = 100;

/**
 * Takes an exclusive OS advisory lock (flock(2)) on `dataDir/pgdata.lock` for as long as this process lives, or until
 * the returned function releases it. Throws, naming the holder, when another process (or another open of the same
 * data directory in this process) holds it.
 *
 * The lock belongs to the kernel's open file description, not to a pid: it vanishes when its holder exits, even on
 * SIGKILL, and a lock file naming some other live process blocks nothing. Node has no flock binding, so util-linux's
 * flock(1) takes the lock on a descriptor this process opened and lends it; when flock(1) exits the lock stays with
 * the description, which only this process holds (Node opens files close-on-exec, so no other child inherits it).
 * ADR 0002 weighs this against a native addon.
 */
export function lockDataDir(dataDir: string): () => void {
  const file = join(dataDir, 'pgdata.lock');
  // No O_TRUNC: a holder's pid must stay readable for the message below. No symlink: the lock is this file.
  const fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  try {
    const flock = spawnSync(
      'flock',
      ['--exclusive', '--nonblock', '--conflict-exit-code', String(CONFLICT_EXIT), '3'],
      {
        stdio: ['ignore', 'ignore', 'pipe', fd],
        encoding: 'utf8',
      },
    );
    if (flock.error) {
      throw new Error(
        `cannot lock the embedded database in ${dataDir}: flock(1) from util-linux is needed (${flock.error.message}); install util-linux or set DATABASE_URL`,
      );
    }
    if (flock.status === CONFLICT_EXIT) {
      const owner = readFileSync(file, 'utf8').trim();
      const who = /^\d+$/.test(owner) ? `process ${owner}` : 'another process';
      throw new DataDirInUseError(
        `the embedded database in ${dataDir} is in use by ${who}; stop that hub first (or set DATABASE_URL)`,
      );
    }
    if (flock.status !== 0) {
      throw new Error(`cannot lock the embedded database in ${dataDir}: flock(1) failed: ${flock.stderr.trim()}`);
    }
    // For the message a second hub prints; the lock itself, not this content, is what excludes it.
    ftruncateSync(fd);
    writeSync(fd, `${process.pid}\n`, 0);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    ftruncateSync(fd);
    // Closing the last descriptor of the description releases the lock. The file stays: removing it would let a
    // process that opened the old inode and one that creates a new file both believe they hold the lock.
    closeSync(fd);
  };
}
