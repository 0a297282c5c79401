import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

/**
 * Integration tests run the hub and agent as processes, and some unit tests run built code (the DP noise worker thread,
 * benchmark scripts): build first (incremental, seconds when nothing changed). TESSERA_TEST_SKIP_BUILD=1 skips it, for
 * running a few unit tests of one library while another part of the tree does not compile.
 */
export default function setup(): void {
  if (process.env.TESSERA_TEST_SKIP_BUILD === '1') return;
  const tsc = resolve(__dirname, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { cwd: __dirname, stdio: 'inherit' });
}
