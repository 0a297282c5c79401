import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { AgentError, AgentErrorCode, exitCodeOf } from './agent.error';
import { enroll, parseBundle } from './commands/enroll.command';
import { formatStatus, status } from './commands/status.command';
import { SiloSession } from './hub/silo-session';
import { AgentState } from './state/agent-state';

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
}

const DEFAULT_STATE_DIR = '.tessera/agent';

function readBundleArg(value: string | undefined): string {
  if (!value) {
    throw new AgentError(
      AgentErrorCode.USAGE,
      'give the enrollment bundle with --bundle <file or text> or TESSERA_ENROLLMENT_BUNDLE',
    );
  }
  const path = value.startsWith('@') ? value.slice(1) : value;
  return existsSync(path) ? readFileSync(path, 'utf8') : value;
}

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

  const stateOf = () =>
    new AgentState(
      resolve(program.opts<{ stateDir?: string }>().stateDir ?? io.env.TESSERA_STATE_DIR ?? DEFAULT_STATE_DIR),
    );

  program
    .command('enroll')
    .description('enroll with the hub using a one-time bundle: makes a key pair here and obtains a certificate')
    .option('--bundle <file-or-text>', 'the enrollment bundle, as a file or its text (env TESSERA_ENROLLMENT_BUNDLE)')
    .option('--force', 'replace an existing identity')
    .action(async (opts: { bundle?: string; force?: boolean }) => {
      const bundle = parseBundle(readBundleArg(opts.bundle ?? io.env.TESSERA_ENROLLMENT_BUNDLE));
      const record = await enroll(stateOf(), bundle, { force: opts.force ?? false });
      io.out(
        `enrolled as silo ${record.siloName} (${record.siloId}); certificate ${record.serial} valid until ${record.notAfter}\n`,
      );
    });

  program
    .command('status')
    .description("show this agent's identity, certificate expiry and whether the hub answers it")
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const s = await status(stateOf());
      io.out(opts.json ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s) + '\n');
      if (!s.hub.reachable) result.exitCode = 1;
    });

  program
    .command('renew')
    .description('renew the certificate now if a third or less of its lifetime remains (or always, with --force)')
    .option('--force', 'renew even if not due')
    .action(async (opts: { force?: boolean }) => {
      const session = new SiloSession(stateOf());
      const renewed = await session.renewIfDue(opts.force ?? false);
      const { serial, notAfter } = session.current.record;
      io.out(
        renewed
          ? `renewed: certificate ${serial} valid until ${notAfter}\n`
          : `not due: certificate ${serial} valid until ${notAfter}\n`,
      );
    });

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
