import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

/** Integration tests also run the hub and agent as processes, from their builds: build once (incremental). */
export default function setup(): void {
  const tsc = resolve(__dirname, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { cwd: __dirname, stdio: 'inherit' });
}
