import { createCsr, generateKeyPair, type KeyPairPem } from '@tessera/pki';
import { SILO_API, type CertificateGrant, type EnrollmentBundle } from '@tessera/protocol';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { HubPkiService } from '../pki/hub-pki.service';
import type { EnrollmentIssued } from '../silos/silos.service';
import { api, type TestHub } from './test-hub.test-util';
import { tlsCall } from './agent-process.test-util';

/** A silo enrolled in-process (no agent process): for protocol tests that need exact control of every call. */
export class TestSilo {
  private constructor(
    private readonly hub: TestHub,
    readonly id: string,
    readonly name: string,
    private readonly keys: KeyPairPem,
    private readonly certificatePem: string,
    private readonly caPem: string,
  ) {}

  static async enroll(
    hub: TestHub,
    admin: Record<string, string>,
    name: string,
    keys = generateKeyPair(),
  ): Promise<TestSilo> {
    const reg = await api(hub, 'POST', '/api/silos', { headers: admin, json: { name, contact: 'it@example.org' } });
    if (reg.status !== 201) throw new Error(`register ${name}: ${JSON.stringify(reg.body)}`);
    const bundle: EnrollmentBundle = (reg.body as EnrollmentIssued).bundle;
    const caPem = hub.app.get(HubPkiService).serverCredentials().caCertificatePem;
    const res = await tlsCall(
      hub.enrollUrl,
      'POST',
      SILO_API.enroll,
      caPem,
      {},
      {
        token: bundle.token,
        csrPem: createCsr({ privateKeyPem: keys.privateKeyPem, siloId: bundle.siloId }),
      },
    );
    if (!('status' in res) || res.status !== 200) throw new Error(`enroll ${name}: ${JSON.stringify(res)}`);
    const grant = res.body as CertificateGrant;
    return new TestSilo(hub, bundle.siloId, name, keys, grant.certificatePem, caPem);
  }

  /** The same silo (key and certificate) talking to another hub process on the same data (restart tests). */
  on(hub: TestHub): TestSilo {
    return new TestSilo(hub, this.id, this.name, this.keys, this.certificatePem, this.caPem);
  }

  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const res = await tlsCall(
      this.hub.siloUrl,
      method,
      path,
      this.caPem,
      { key: this.keys.privateKeyPem, cert: this.certificatePem },
      body,
    );
    if (!('status' in res)) throw new Error(`TLS failure: ${res.tlsError}`);
    return res;
  }

  /** An HTTPS agent that keeps this silo's mutual-TLS connections open between calls (as the real agent does). */
  keptAliveAgent(): HttpsAgent {
    return new HttpsAgent({
      keepAlive: true,
      maxSockets: 1,
      ca: [this.caPem],
      key: this.keys.privateKeyPem,
      cert: this.certificatePem,
    });
  }

  /** Raw bytes in and out (updates, model downloads). */
  binary(
    method: string,
    path: string,
    body?: Uint8Array,
    contentType = 'application/octet-stream',
  ): Promise<{ status: number; bytes: Buffer }> {
    return new Promise((done, fail) => {
      const req = httpsRequest(
        new URL(path, this.hub.siloUrl),
        {
          method,
          agent: false,
          ca: [this.caPem],
          key: this.keys.privateKeyPem,
          cert: this.certificatePem,
          headers: body ? { 'content-type': contentType, 'content-length': String(body.length) } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => done({ status: res.statusCode ?? 0, bytes: Buffer.concat(chunks) }));
        },
      );
      req.on('error', fail);
      if (body) req.write(body);
      req.end();
    });
  }

  json(bytes: Buffer): unknown {
    return JSON.parse(bytes.toString('utf8'));
  }
}
