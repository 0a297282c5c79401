import { createCertificateAuthority, issueSiloCertificate } from '@tessera/pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '../commands/status.command';
import { answerJson as json, startTlsTestHub, type TlsTestHub } from '../testing/tls-hub.test-util';
import { closeHubConnections } from './hub-client';
import { SiloSession } from './silo-session';

const ca = createCertificateAuthority({ commonName: 'Test hub CA', validityDays: 2, modulusBits: 2048 });
let hub: TlsTestHub;

beforeAll(async () => {
  hub = await startTlsTestHub({ ca });
});

afterAll(async () => {
  closeHubConnections();
  await hub.close();
});

// The session's typed calls (openapi-fetch over the hub's document) on real mutual TLS: the renewal and `status`.
describe('SiloSession, typed by the OpenAPI document', () => {
  it('renews over the documented route with a CSR for a new key, and keeps the certificate the hub grants', async () => {
    const session = new SiloSession(hub.state);
    const before = session.current.record.serial;
    hub.handle((_req, res, body) => {
      const { csrPem } = JSON.parse(body.toString('utf8')) as { csrPem: string };
      const issued = issueSiloCertificate({ ca, csr: csrPem, siloId: session.siloId });
      json(res, 200, {
        siloId: session.siloId,
        certificatePem: issued.certificatePem,
        caCertificatePem: ca.certificatePem,
        serial: issued.serialHex,
        notAfter: issued.notAfter.toISOString(),
        hubSiloUrl: session.current.record.hubSiloUrl,
      });
    });
    await expect(session.renewIfDue(true)).resolves.toBe(true);
    expect(hub.seen.at(-1)).toMatchObject({
      method: 'POST',
      url: '/silo/v1/certificate/renew',
      contentType: 'application/json',
    });
    expect(session.current.record.serial).not.toBe(before);
    expect(hub.state.loadIdentity().record.serial).toBe(session.current.record.serial);
  });

  it('refuses a renewal the hub refuses, with its message', async () => {
    hub.handle((_req, res) =>
      json(res, 409, { error: 'RENEWAL_PENDING', message: 'A renewed certificate is unused.', correlationId: 'c' }),
    );
    await expect(new SiloSession(hub.state).renewIfDue(true)).rejects.toThrow(/A renewed certificate is unused/);
  });

  it('reports the silo’s status from GET /silo/v1/me, and the hub’s message when it refuses', async () => {
    const session = new SiloSession(hub.state);
    hub.handle((_req, res) =>
      json(res, 200, {
        siloId: session.siloId,
        name: 'Test silo',
        status: 'enrolled',
        certificate: { serial: session.current.record.serial, notAfter: session.current.record.notAfter },
        hubTime: new Date().toISOString(),
      }),
    );
    expect((await status(hub.state)).hub).toEqual({ reachable: true, siloStatus: 'enrolled' });
    expect(hub.seen.at(-1)).toMatchObject({ method: 'GET', url: '/silo/v1/me' });

    hub.handle((_req, res) => json(res, 403, { error: 'SILO_SUSPENDED', message: 'Suspended.', correlationId: 'c' }));
    expect((await status(hub.state)).hub).toEqual({ reachable: false, error: 'Suspended.' });
  });
});
