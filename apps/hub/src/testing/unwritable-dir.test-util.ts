import { execFileSync } from 'node:child_process';
import { chmodSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function dirsUnder(root: string): string[] {
  return [
    root,
    ...readdirSync(root)
      .map((n) => join(root, n))
      .filter((p) => statSync(p).isDirectory())
      .flatMap(dirsUnder),
  ];
}

/**
 * Makes a directory tree refuse writes for real, and returns the function that undoes it. As an ordinary user:
 * mode 0555 on every directory (EACCES). As root, whom modes do not stop: a read-only bind mount (EROFS, what a
 * read-only volume gives), or else the immutable attribute (EPERM). Throws when none is possible here.
 */
export function makeUnwritable(root: string): () => void {
  if (process.getuid?.() !== 0) {
    const dirs = dirsUnder(root);
    for (const d of dirs) chmodSync(d, 0o555);
    return () => dirs.forEach((d) => chmodSync(d, 0o755));
  }
  try {
    execFileSync('mount', ['--bind', root, root], { stdio: 'pipe' });
    try {
      execFileSync('mount', ['-o', 'remount,ro,bind', root], { stdio: 'pipe' });
    } catch (err) {
      execFileSync('umount', [root], { stdio: 'pipe' });
      throw err;
    }
    return () => execFileSync('umount', [root], { stdio: 'pipe' });
  } catch {
    // No mount privilege (a container without CAP_SYS_ADMIN): the immutable attribute stops root too.
    const dirs = dirsUnder(root);
    execFileSync('chattr', ['+i', ...dirs], { stdio: 'pipe' });
    return () => execFileSync('chattr', ['-i', ...dirs], { stdio: 'pipe' });
  }
}
