import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createCertificateAuthority,
  createCsr,
  generateKeyPair,
  issueServerCertificate,
  issueSiloCertificate,
} from '@tessera/pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentErrorCode } from '../agent.error';
import { AgentState } from '../state/agent-state';
import { buildPlan, buildStudy } from '../testing/study.test-util';
import { SiloSession } from './silo-session';
import { SiloStudyTransport } from './study-transport';

/** What the test server saw of each request. */
interface Seen {
  method: string;
  url: string;
  contentType: string | undefined;
  clientAuthorized: boolean;
  body: Buffer;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

let server: Server;
let transport: SiloStudyTransport;
let handler: Handler = (_req, res) => res.end();
const seen: Seen[] = [];

beforeAll(async () => {
  // A real mutual-TLS server: our own CA, a server certificate for 127.0.0.1 and a silo certificate.
  const ca = createCertificateAuthority({ commonName: 'Test hub CA', validityDays: 2, modulusBits: 2048 });
  const serverCert = issueServerCertificate({ ca, hostnames: ['localhost'], ips: ['127.0.0.1'], validityDays: 1 });
  const siloId = randomUUID();
  const keys = generateKeyPair({ modulusBits: 2048 });
  const silo = issueSiloCertificate({ ca, csr: createCsr({ privateKeyPem: keys.privateKeyPem, siloId }), siloId });

  server = createServer(
    { key: serverCert.privateKeyPem, cert: serverCert.certificatePem, ca: [ca.certificatePem], requestCert: true },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          contentType: req.headers['content-type'],
          clientAuthorized: (req.socket as import('node:tls').TLSSocket).authorized,
          body,
        });
        handler(req, res, body);
      });
    },
  );
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const port = (server.address() as AddressInfo).port;

  const state = new AgentState(mkdtempSync(join(tmpdir(), 'tessera-transport-')));
  state.saveIdentity(
    {
      siloId,
      siloName: 'Test silo',
      hubSiloUrl: `https://127.0.0.1:${port}`,
      enrollUrl: `https://127.0.0.1:${port}`,
      caFingerprintSha256: 'a'.repeat(64),
      serial: silo.serialHex,
      notAfter: silo.notAfter.toISOString(),
      enrolledAt: new Date().toISOString(),
    },
    keys.privateKeyPem,
    silo.certificatePem,
    ca.certificatePem,
  );
  transport = new SiloStudyTransport(new SiloSession(state));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
});

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

describe('SiloStudyTransport over mutual TLS', () => {
  it('uploads an update as octet-stream, byte for byte, and parses the receipt', async () => {
    const studyId = randomUUID();
    const receipt = {
      studyId,
      siloId: randomUUID(),
      round: 3,
      attempt: 1,
      updateSha256: 'b'.repeat(64),
      receivedAt: new Date().toISOString(),
    };
    handler = (_req, res) => json(res, 200, receipt);
    const frame = Uint8Array.from({ length: 1000 }, (_, i) => (i * 37) % 256);
    await expect(transport.uploadUpdate(studyId, 3, frame)).resolves.toEqual(receipt);
    const request = seen.at(-1)!;
    expect(request).toMatchObject({
      method: 'POST',
      url: `/silo/v1/studies/${studyId}/rounds/3/update`,
      contentType: 'application/octet-stream',
      clientAuthorized: true,
    });
    expect(request.body.equals(Buffer.from(frame))).toBe(true);
  });

  it('downloads a binary model and refuses one larger than expected', async () => {
    const model = Buffer.from(Float32Array.from([0.5, -1.25, 3]).buffer);
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(model);
    };
    const bytes = await transport.downloadModel('c'.repeat(64), 12);
    expect(Buffer.from(bytes).equals(model)).toBe(true);
    expect(seen.at(-1)!.url).toBe(`/silo/v1/blobs/${'c'.repeat(64)}`);

    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.alloc(4096));
    };
    await expect(transport.downloadModel('c'.repeat(64), 12)).rejects.toMatchObject({
      code: AgentErrorCode.HUB_REFUSED,
    });
  });

  it('long-polls with the wait in the query, validates studies, and can be cancelled', async () => {
    const study = buildStudy(buildPlan());
    handler = (_req, res) => json(res, 200, [study]);
    await expect(transport.listStudies()).resolves.toEqual([study]);

    handler = (_req, res) => json(res, 200, { tasks: [] });
    await expect(transport.pollTasks(7)).resolves.toEqual([]);
    expect(seen.at(-1)!.url).toBe('/silo/v1/tasks?wait=7');

    handler = () => undefined; // never answers
    const stop = new AbortController();
    const poll = transport.pollTasks(20, stop.signal);
    setImmediate(() => stop.abort());
    await expect(poll).rejects.toMatchObject({ code: AgentErrorCode.HUB_UNREACHABLE });
  });

  it('maps 401/403 to IDENTITY_REFUSED and other refusals to HUB_REFUSED with the status and message', async () => {
    handler = (_req, res) =>
      json(res, 401, { error: 'SILO_IDENTITY_REFUSED', message: 'certificate revoked', correlationId: 'x' });
    await expect(transport.listStudies()).rejects.toMatchObject({
      code: AgentErrorCode.IDENTITY_REFUSED,
      httpStatus: 401,
      message: expect.stringContaining('certificate revoked'),
    });
    handler = (_req, res) => json(res, 409, { error: 'CONFLICT', message: 'round 3 is closed', correlationId: 'y' });
    await expect(transport.uploadUpdate(randomUUID(), 3, new Uint8Array(8))).rejects.toMatchObject({
      code: AgentErrorCode.HUB_REFUSED,
      httpStatus: 409,
      message: expect.stringContaining('round 3 is closed'),
    });
  });
});
