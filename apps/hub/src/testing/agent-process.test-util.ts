import { spawn } from 'node:child_process';
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
