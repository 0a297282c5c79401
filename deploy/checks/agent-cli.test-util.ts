import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The text of the agent's command line: apps/agent/src/cli.ts assembles the program and each module in
 * apps/agent/src/commands/ registers one command with its flags and the environment variables it reads.
 */
export function agentCliText(repo: string): string {
  const commands = join(repo, 'apps/agent/src/commands');
  const modules = readdirSync(commands)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'))
    .sort()
    .map((f) => join(commands, f));
  return [join(repo, 'apps/agent/src/cli.ts'), ...modules].map((f) => readFileSync(f, 'utf8')).join('\n');
}
