import { existsSync, readdirSync, statSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { HubPkiService } from '../pki/hub-pki.service';
import type { TestHub } from '../testing/test-hub.test-util';
import type { TestSilo } from '../testing/test-silo.test-util';

/** An answer as a hostile client sees it. */
export interface RawAnswer {
  status: number;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}

export type Listener = 'people' | 'enroll' | 'silo';

/** One hostile request: raw bytes, any content type, on any listener. */
export interface HostileRequest {
  listener: Listener;
  method: string;
  path: string;
  body?: string | Buffer;
  contentType?: string;
  headers?: Record<string, string>;
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function viaFetch(hub: TestHub, r: HostileRequest): Promise<RawAnswer> {
  const headers: Record<string, string> = { ...r.headers };
  if (r.body !== undefined) headers['content-type'] = r.contentType ?? 'application/json';
  const res = await fetch(`${hub.url}${r.path}`, { method: r.method, headers, body: r.body });
  return { status: res.status, body: parse(await res.text()), headers: Object.fromEntries(res.headers) };
}

function viaEnrollment(hub: TestHub, r: HostileRequest): Promise<RawAnswer> {
  const ca = hub.app.get(HubPkiService).serverCredentials().caCertificatePem;
  const body = r.body === undefined ? undefined : Buffer.from(r.body);
  return new Promise((done, fail) => {
    const req = httpsRequest(
      new URL(r.path, hub.enrollUrl),
      {
        method: r.method,
        agent: false,
        ca: [ca],
        headers: {
          ...r.headers,
          ...(body
            ? { 'content-type': r.contentType ?? 'application/json', 'content-length': String(body.length) }
            : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          done({ status: res.statusCode ?? 0, body: parse(Buffer.concat(chunks).toString()), headers: res.headers }),
        );
      },
    );
    req.on('error', fail);
    if (body) req.write(body);
    req.end();
  });
}

async function viaSilo(silo: TestSilo, r: HostileRequest): Promise<RawAnswer> {
  const body = r.body === undefined ? undefined : Buffer.from(r.body);
  const res = await silo.binary(r.method, r.path, body, r.contentType ?? 'application/json');
  return { status: res.status, body: parse(res.bytes.toString()), headers: {} };
}

export function send(hub: TestHub, silo: TestSilo, r: HostileRequest): Promise<RawAnswer> {
  if (r.listener === 'people') return viaFetch(hub, r);
  if (r.listener === 'enroll') return viaEnrollment(hub, r);
  return viaSilo(silo, r);
}

/** The tables a refused request must leave alone (the audit trail and the refusal counters record refusals). */
export const STATE_TABLES = [
  'users',
  'hub_pki',
  'silos',
  'enrollment_tokens',
  'silo_certificates',
  'studies',
  'study_plan_versions',
  'study_decisions',
  'rounds',
  'round_participants',
  'privacy_ledger',
  'audit_signing_keys',
  'study_drafts',
];

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** Row counts of the state tables, and every file of the blob store with its size. */
export async function snapshot(hub: TestHub): Promise<Record<string, number | string[]>> {
  const db = hub.app.get(DataSource);
  const out: Record<string, number | string[]> = {};
  for (const table of STATE_TABLES) {
    const [row] = await db.query<{ n: number }[]>(`SELECT count(*)::int AS n FROM "${table}"`);
    out[table] = row!.n;
  }
  const blobs = join(hub.dataDir, 'blobs');
  out.blobs = (existsSync(blobs) ? filesUnder(blobs) : [])
    .map((p) => `${p.slice(hub.dataDir.length)}:${statSync(p).size}`)
    .sort();
  return out;
}
