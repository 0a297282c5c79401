import { resolve } from 'node:path';
import { AgentError, AgentErrorCode } from '../agent.error';
import type { RunOptions } from '../run/run-daemon';
import { progressDisplayFor } from '../run/progress-display';
import type { CliIo, RegisterAgentCommand } from './agent-command';
import { capOption } from './privacy-cap.util';

/** The hub waits at most 30 s on a long poll. */
export const MAX_POLL_WAIT_SECONDS = 30;

export function parsePollWait(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_POLL_WAIT_SECONDS) {
    throw new AgentError(
      AgentErrorCode.USAGE,
      `--poll-wait must be a whole number of seconds in 1..${MAX_POLL_WAIT_SECONDS}`,
    );
  }
  return n;
}

function processStopSignal(handler: () => void): () => void {
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}

interface RunFlags {
  data?: string;
  policy?: string;
  pollWait: string;
  exitAfterStudy?: string;
  privacyCapEpsilon?: string;
  privacyCapDelta?: string;
}

/** The daemon's options from flags, then the environment; `stop` aborts after the current step. */
function runOptionsOf(opts: RunFlags, io: CliIo, stop: AbortSignal): RunOptions {
  const dataFile = opts.data ?? io.env.TESSERA_DATA_FILE;
  const policyFile = opts.policy ?? io.env.TESSERA_POLICY_FILE;
  return {
    ...(dataFile ? { dataFile: resolve(dataFile) } : {}),
    ...(policyFile ? { policyFile: resolve(policyFile) } : {}),
    pollWaitSeconds: parsePollWait(opts.pollWait),
    ...(opts.exitAfterStudy ? { exitAfterStudy: opts.exitAfterStudy } : {}),
    ...(io.terminal ? { display: progressDisplayFor(io.terminal, io.out, io.env) } : {}),
    ...capOption(
      opts.privacyCapEpsilon ?? io.env.TESSERA_PRIVACY_CAP_EPSILON,
      opts.privacyCapDelta ?? io.env.TESSERA_PRIVACY_CAP_DELTA,
    ),
    stop,
  };
}

/** `tessera-agent run`: the daemon until SIGTERM/SIGINT (or the end of `--exit-after-study`). */
export const registerRunCommand: RegisterAgentCommand = (program, { io, result, stateOf }) => {
  program
    .command('run')
    .description('run the agent: approve by policy, wait for tasks, train and evaluate on local data, upload updates')
    .option('--data <file.csv>', "the silo's data file (env TESSERA_DATA_FILE)")
    .option('--policy <file.json>', 'approval policy for studies within fixed limits (env TESSERA_POLICY_FILE)')
    .option('--poll-wait <seconds>', 'long-poll wait for tasks, 1..30', '20')
    .option('--exit-after-study <id>', 'exit once this study has ended (1 if this silo failed it)')
    .option('--privacy-cap-epsilon <e>', "this silo's cap on ε across all studies (env TESSERA_PRIVACY_CAP_EPSILON)")
    .option(
      '--privacy-cap-delta <d>',
      'the δ at which the cap is measured (env TESSERA_PRIVACY_CAP_DELTA, default 1e-5)',
    )
    .action(async (opts: RunFlags) => {
      const stopper = new AbortController();
      const unregister = (io.onStopSignal ?? processStopSignal)(() => {
        if (!stopper.signal.aborted) io.out(`${new Date().toISOString()} agent: stopping after the current step\n`);
        stopper.abort();
      });
      try {
        const options = runOptionsOf(opts, io, stopper.signal);
        // The daemon and its training code (TensorFlow.js) load here, not when any other command runs.
        const { runDaemon } = await import('../run/run-daemon.js');
        result.exitCode = await runDaemon(stateOf(), options, io.out);
      } finally {
        unregister();
      }
    });
};
