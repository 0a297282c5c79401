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

/**
 * The text of the hub's configuration table: `config.schema.ts` and the groups it spreads in
 * (`*-config.schema.ts`), where every variable is declared as `name: 'TESSERA_…'`.
 */
export function hubConfigText(repo: string): string {
  const dir = join(repo, 'apps/hub/src/config');
  return readdirSync(dir)
    .filter((f) => f.endsWith('config.schema.ts'))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
}
