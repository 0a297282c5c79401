import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { AgentError, exitCodeOf } from './agent.error';
import type { AgentCommandContext, CliIo, RegisterAgentCommand } from './commands/agent-command';
import { registerAuditCommand } from './commands/audit.command';
import { registerBudgetCommand } from './commands/budget.command';
import { registerEnrollCommand } from './commands/enroll.command';
import { registerPrivacyAuditCommand } from './commands/privacy-audit.command';
import { registerRenewCommand } from './commands/renew.command';
import { registerRunCommand } from './commands/run.command';
import { registerStatusCommand } from './commands/status.command';
import { registerStudiesCommand } from './commands/studies.command';
import { AgentState } from './state/agent-state';

export type { CliIo } from './commands/agent-command';

const DEFAULT_STATE_DIR = '.tessera/agent';

/**
 * The commands, in the order `--help` lists them. Each module in ./commands registers its command (flags,
 * description, action); a new command is a new module there and one line here.
 */
const AGENT_COMMANDS: readonly RegisterAgentCommand[] = [
  registerEnrollCommand,
  registerStatusCommand,
  registerRenewCommand,
  registerStudiesCommand,
  registerAuditCommand,
  registerRunCommand,
  registerBudgetCommand,
  registerPrivacyAuditCommand,
];

/** Builds the `tessera-agent` program; flags win over environment variables (the Docker image uses the latter). */
export function buildProgram(io: CliIo, result: { exitCode: number }): Command {
  const program = new Command('tessera-agent')
    .description("Tessera's agent: runs inside a hospital, next to its data; only ever connects out to the hub.")
    .option(
      '--state-dir <dir>',
      'where the agent keeps its key, certificate, ledger and audit log (env TESSERA_STATE_DIR)',
    )
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .exitOverride()
    .showHelpAfterError();
  const ctx: AgentCommandContext = {
    io,
    result,
    stateOf: () =>
      new AgentState(
        resolve(program.opts<{ stateDir?: string }>().stateDir ?? io.env.TESSERA_STATE_DIR ?? DEFAULT_STATE_DIR),
      ),
  };
  for (const register of AGENT_COMMANDS) register(program, ctx);
  return program;
}

/** Runs the CLI; resolves with the exit code instead of exiting, so tests can call it. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const result = { exitCode: 0 };
  const program = buildProgram(io, result);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return result.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof AgentError) {
      io.err(`tessera-agent: ${err.message}\n`);
      return exitCodeOf(err.code);
    }
    io.err(`tessera-agent: unexpected failure: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}
