import type { Command } from 'commander';
import type { AgentState } from '../state/agent-state';

/** What the CLI reads and writes: the process's streams and environment in production, buffers in tests. */
export interface CliIo {
  /** The terminal behind `out`, when there is one: `run` then draws progress bars. */
  terminal?: NodeJS.WriteStream;
  // Function-typed properties, not methods: commands pass them on detached (`io.out`), so they must not use `this`.
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** Registers a handler for SIGTERM/SIGINT; returns a function that unregisters it. Defaults to the process's. */
  onStopSignal?: (handler: () => void) => () => void;
}

/** What every command gets from the program that holds it. */
export interface AgentCommandContext {
  io: CliIo;
  /** The exit code runCli returns; a command sets it when it finishes without throwing but must not report success. */
  result: { exitCode: number };
  /** The state directory the global `--state-dir` (or TESSERA_STATE_DIR) names, opened when a command runs. */
  stateOf: () => AgentState;
}

/**
 * One `tessera-agent` command (with its subcommands): adds itself to the program. Flags win over environment
 * variables, which the Docker image uses.
 */
export type RegisterAgentCommand = (program: Command, ctx: AgentCommandContext) => void;
