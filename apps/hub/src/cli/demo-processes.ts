import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';

export const REPO = resolve(__dirname, '../../../..');
const AGENT = join(REPO, 'apps/agent/dist/main.js');
const VERIFIER = join(REPO, 'libs/audit/dist/verify-cli.js');

export interface ProcessOutcome {
  code: number | null;
  /** Standard output and error, interleaved as they arrived. */
  out: string;
}

/** Collects a child's output until it exits; rejects if it cannot be started. */
function outcomeOf(child: ChildProcess): Promise<ProcessOutcome> {
  return new Promise((done, fail) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', fail);
    child.on('exit', (code) => done({ code, out }));
  });
}

/** Runs one agent CLI command as its own process (as the Docker image would), with only the given environment. */
export function runAgent(args: string[], env: Record<string, string>): Promise<ProcessOutcome> {
  return outcomeOf(
    spawn(process.execPath, [AGENT, ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}

/** A running `tessera-agent run` that exits once the study has ended; `exit` resolves then, named after its silo. */
export function startAgentDaemon(
  studyId: string,
  silo: { name: string; env: Record<string, string> },
): { child: ChildProcess; exit: Promise<ProcessOutcome & { name: string }> } {
  const child = spawn(process.execPath, [AGENT, 'run', '--exit-after-study', studyId, '--poll-wait', '5'], {
    env: { PATH: process.env.PATH, ...silo.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exit = new Promise<ProcessOutcome & { name: string }>((done) =>
    child.on('exit', (code) => done({ name: silo.name, code, out })),
  );
  return { child, exit };
}

/** The offline verifier (tessera-verify) on a report.json, as an auditor would run it. */
export function runVerifier(reportJson: string): Promise<ProcessOutcome> {
  return outcomeOf(spawn(process.execPath, [VERIFIER, reportJson], { stdio: ['ignore', 'pipe', 'pipe'] }));
}
