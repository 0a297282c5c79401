import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { resolve } from 'node:path';

export const AGENT_MAIN = resolve(__dirname, '../../../agent/dist/main.js');

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built agent CLI as its own process, the way the Docker image's entrypoint does. */
export function runAgent(args: string[], env: Record<string, string> = {}): Promise<ProcessResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [AGENT_MAIN, ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', fail);
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

export interface TlsIdentity {
  key?: string;
  cert?: string;
}

/** A raw HTTPS call with an arbitrary client identity: resolves with the answer, or with the TLS error. */
export function tlsCall(
  baseUrl: string,
  method: string,
  path: string,
  ca: string,
  identity: TlsIdentity,
  body?: unknown,
): Promise<{ status: number; body: unknown } | { tlsError: string }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((done) => {
    const req = httpsRequest(
      new URL(path, baseUrl),
      {
        method,
        agent: false,
        ca: [ca],
        ...(identity.key ? { key: identity.key, cert: identity.cert } : {}),
        headers: payload ? { 'content-type': 'application/json' } : {},
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // keep the text
          }
          done({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => done({ tlsError: err.code ?? err.message }));
    if (payload) req.write(payload);
    req.end();
  });
}

/** A `tessera-agent run --exit-after-study` process, with its output collected. */
export interface AgentRun {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** Starts the agent as the Docker image runs it, until `studyId` ends, polling the hub every `pollWaitSeconds`. */
export function startAgentRun(studyId: string, env: Record<string, string>, pollWaitSeconds = 2): AgentRun {
  const child = spawn(
    process.execPath,
    [AGENT_MAIN, 'run', '--exit-after-study', studyId, '--poll-wait', String(pollWaitSeconds)],
    { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return { child, output: () => out, exited };
}
