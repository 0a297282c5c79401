// After docker-compose.yml's demonstration (.ci/containers.sh), fetches what an auditor checks, through the hub's
// published console port as an administrator: the completed study's compliance report exactly as served
// (report.json, its bytes checked against the hub's x-report-sha256 header) and the hub's audit public key (PEM),
// which `tessera-verify --public-key` pins.
//
//   TESSERA_ADMIN_USERNAME=... TESSERA_ADMIN_PASSWORD=... node study-report.mjs <hub url> <output folder>
//
// Prints the study's id; exits 1 unless exactly one study exists and it completed.
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';

const { fetch } = globalThis;

async function signIn(hub, username, password) {
  const res = await fetch(`${hub}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (res.status !== 200) throw new Error(`sign-in as ${username}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()).accessToken;
}

async function get(hub, token, path) {
  const res = await fetch(`${hub}${path}`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status} ${await res.text()}`);
  return res;
}

async function main(hub, out) {
  const { TESSERA_ADMIN_USERNAME: username, TESSERA_ADMIN_PASSWORD: password } = process.env;
  if (!username || !password) throw new Error('set TESSERA_ADMIN_USERNAME and TESSERA_ADMIN_PASSWORD');
  const token = await signIn(hub, username, password);
  const studies = await (await get(hub, token, '/api/studies')).json();
  const summary = studies.map((s) => `${s.name} (${s.id}): ${s.status}`).join('; ');
  if (studies.length !== 1 || studies[0].status !== 'completed') {
    throw new Error(`expected one completed study, found: ${summary || 'none'}`);
  }
  const id = studies[0].id;
  const report = await get(hub, token, `/api/studies/${id}/report.json`);
  const bytes = Buffer.from(await report.arrayBuffer());
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (report.headers.get('x-report-sha256') !== sha256) {
    throw new Error(`report.json hashes to ${sha256}, the hub says ${report.headers.get('x-report-sha256')}`);
  }
  writeFileSync(join(out, 'report.json'), bytes);
  const key = await (await get(hub, token, '/api/audit/public-key')).json();
  writeFileSync(join(out, 'hub-audit-key.pem'), key.publicKeyPem);
  process.stdout.write(`${id}\n`);
}

const [hub, out] = process.argv.slice(2);
if (!hub || !out) {
  process.stderr.write('usage: node study-report.mjs <hub url> <output folder>\n');
  process.exit(2);
}
main(hub, out).catch((error) => {
  process.stderr.write(`study-report: ${error.message}\n`);
  process.exit(1);
});
