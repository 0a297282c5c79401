import type { Agent } from 'node:https';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricsService } from '../metrics/metrics.service';
import { ADMIN, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';

/** A GET over `agent`, with the local port of the socket it used (the same port = the same connection). */
function get(hub: TestHub, agent: Agent, path: string): Promise<{ status: number; body: unknown; localPort: number }> {
  return new Promise((done, fail) => {
    const req = httpsRequest(new URL(path, hub.siloUrl), { agent }, (res) => {
      // Read now: a kept-alive socket is detached from the answer once it is back in the agent's pool.
      const localPort = (res.socket as TLSSocket).localPort ?? 0;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        done({
          status: res.statusCode ?? 0,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown,
          localPort,
        }),
      );
    });
    req.on('error', fail);
    req.end();
  });
}

/**
 * Agents keep their mutual-TLS connection open between calls (issue 21, item 3). The hub must judge the client
 * certificate on every request, not once per connection: a silo suspended or a certificate revoked while a
 * connection stays open is refused on its very next request over that same connection.
 */
describe('a kept-alive silo connection is judged on every request', () => {
  let hub: TestHub;
  let admin: Record<string, string>;
  beforeAll(async () => {
    hub = await startTestHub('embedded');
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
  });
  afterAll(async () => {
    await hub?.dispose();
  });

  it('refuses the next request on the same connection once the silo is suspended, and admits it when resumed', async () => {
    const silo = await TestSilo.enroll(hub, admin, 'Kept suspended');
    const metrics = hub.app.get(MetricsService);
    const siloConnections = async () =>
      (await metrics.connections.get()).values.find((v) => v.labels.listener === 'silo')?.value ?? 0;
    const connectionsBefore = await siloConnections();
    const agent = silo.keptAliveAgent();
    try {
      const first = await get(hub, agent, '/silo/v1/me');
      expect(first.status).toBe(200);
      const suspend = await api(hub, 'POST', `/api/silos/${silo.id}/suspend`, {
        headers: admin,
        json: { reason: 'kept connection test' },
      });
      expect(suspend.status).toBe(200);
      const refused = await get(hub, agent, '/silo/v1/me');
      expect(refused.localPort).toBe(first.localPort);
      expect(refused.status).toBe(403);
      expect((refused.body as { error: string }).error).toBe('SILO_SUSPENDED');
      expect((await api(hub, 'POST', `/api/silos/${silo.id}/resume`, { headers: admin })).status).toBe(200);
      const back = await get(hub, agent, '/silo/v1/me');
      expect([back.status, back.localPort]).toEqual([200, first.localPort]);
    } finally {
      agent.destroy();
    }
    // The hub's wire metrics: this silo's three calls were one connection, its bytes counted when it closed.
    await new Promise((r) => setTimeout(r, 200));
    expect((await siloConnections()) - connectionsBefore).toBe(1);
    const bytes = (await metrics.wireBytes.get()).values.filter((v) => v.labels.listener === 'silo');
    expect(bytes.map((v) => v.labels.direction).sort()).toEqual(['received', 'sent']);
    expect(bytes.every((v) => v.value > 1_000)).toBe(true);
  });

  it('refuses the next request on the same connection once its certificate is revoked', async () => {
    const silo = await TestSilo.enroll(hub, admin, 'Kept revoked');
    const agent = silo.keptAliveAgent();
    try {
      const first = await get(hub, agent, '/silo/v1/me');
      expect(first.status).toBe(200);
      const view = (await api(hub, 'GET', `/api/silos/${silo.id}`, { headers: admin })).body as {
        certificate: { serial: string } | null;
      };
      const revoked = await api(hub, 'POST', `/api/silos/${silo.id}/certificates/${view.certificate!.serial}/revoke`, {
        headers: admin,
        json: { reason: 'kept connection test' },
      });
      expect(revoked.status).toBe(200);
      const refused = await get(hub, agent, '/silo/v1/me');
      expect(refused.localPort).toBe(first.localPort);
      expect([refused.status, (refused.body as { error: string }).error]).toEqual([401, 'SILO_IDENTITY_REFUSED']);
    } finally {
      agent.destroy();
    }
  });
});
