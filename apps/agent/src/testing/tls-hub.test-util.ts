import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  createCsr,
  generateKeyPair,
  issueServerCertificate,
  issueSiloCertificate,
} from '@tessera/pki';
import { AgentState } from '../state/agent-state';

/** What the test hub saw of each request. */
export interface SeenRequest {
  method: string;
  url: string;
  contentType: string | undefined;
  clientAuthorized: boolean;
  body: Buffer;
}

export type TestHubHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/**
 * A real HTTPS server that demands client certificates from its own CA, and an agent state directory enrolled
 * against it: for testing the agent's calls over real mutual TLS without the hub.
 */
export interface TlsTestHub {
  server: Server;
  state: AgentState;
  seen: SeenRequest[];
  handle(handler: TestHubHandler): void;
  close(): Promise<void>;
}

export interface TlsTestHubOptions {
  /** The hub's CA, which the agent pins and which issues its client certificate; default a fresh one valid 2 days. */
  ca?: CertificateAuthority;
  /** The server certificate the hub presents (e.g. not yet valid, or from another CA); default issued now by `ca`. */
  serverCertificate?: (ca: CertificateAuthority) => { privateKeyPem: string; certificatePem: string };
}

export async function startTlsTestHub(options: TlsTestHubOptions = {}): Promise<TlsTestHub> {
  const ca =
    options.ca ?? createCertificateAuthority({ commonName: 'Test hub CA', validityDays: 2, modulusBits: 2048 });
  const serverCert = options.serverCertificate
    ? options.serverCertificate(ca)
    : issueServerCertificate({ ca, hostnames: ['localhost'], ips: ['127.0.0.1'], validityDays: 1 });
  const siloId = randomUUID();
  const keys = generateKeyPair({ modulusBits: 2048 });
  const silo = issueSiloCertificate({ ca, csr: createCsr({ privateKeyPem: keys.privateKeyPem, siloId }), siloId });
  const seen: SeenRequest[] = [];
  let handler: TestHubHandler = (_req, res) => res.end();
  const server = createServer(
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
          clientAuthorized: (req.socket as TLSSocket).authorized,
          body,
        });
        handler(req, res, body);
      });
    },
  );
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const state = new AgentState(mkdtempSync(join(tmpdir(), 'tessera-tls-hub-')));
  state.saveIdentity(
    {
      siloId,
      siloName: 'Test silo',
      hubSiloUrl: url,
      enrollUrl: url,
      caFingerprintSha256: 'a'.repeat(64),
      serial: silo.serialHex,
      notAfter: silo.notAfter.toISOString(),
      enrolledAt: new Date().toISOString(),
    },
    keys.privateKeyPem,
    silo.certificatePem,
    ca.certificatePem,
  );
  return {
    server,
    state,
    seen,
    handle: (h) => {
      handler = h;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
    },
  };
}

export function answerJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
