import {
  createCertificateAuthority,
  issueServerCertificate,
  type CertificateAuthority,
  CLOCK_SKEW_ALLOWANCE_MS,
} from '@tessera/pki';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentErrorCode } from '../agent.error';
import { answerJson, startTlsTestHub, type TlsTestHub } from '../testing/tls-hub.test-util';
import { CERTIFICATE_CLOCK_TOLERANCE_MS, closeHubConnections } from './hub-client';
import { SiloSession } from './silo-session';

const HOUR = 3_600_000;

/**
 * A real mutual-TLS server whose certificate, by this host's (true) clock, is valid only from `validFromMs` on, or
 * only until `validToMs`: what an agent whose clock runs behind, or ahead, sees of a hub whose certificate is fine.
 */
function serverCertificate(
  window: { validFromMs: number } | { issuedAtMs: number; validityDays: number },
  issuer?: CertificateAuthority,
): (ca: CertificateAuthority) => { privateKeyPem: string; certificatePem: string } {
  // The issuer backdates notBefore by CLOCK_SKEW_ALLOWANCE_MS: issue that much later to start at validFromMs.
  const now = 'validFromMs' in window ? window.validFromMs + CLOCK_SKEW_ALLOWANCE_MS : window.issuedAtMs;
  const validityDays = 'validityDays' in window ? window.validityDays : 30;
  return (ca) =>
    issueServerCertificate({
      ca: issuer ?? ca,
      hostnames: ['localhost'],
      ips: ['127.0.0.1'],
      validityDays,
      now: new Date(now),
    });
}

/** A CA valid from five days ago for fifteen days: it can issue certificates for any window the tests need. */
function longLivedCa(commonName: string): CertificateAuthority {
  return createCertificateAuthority({
    commonName,
    validityDays: 15,
    modulusBits: 2048,
    now: new Date(Date.now() - 5 * 24 * HOUR),
  });
}

let hub: TlsTestHub | undefined;

afterEach(async () => {
  await hub?.close();
  hub = undefined;
});

async function hubPresenting(
  certificate: (ca: CertificateAuthority) => { privateKeyPem: string; certificatePem: string },
): Promise<TlsTestHub> {
  hub = await startTlsTestHub({ ca: longLivedCa('Enrolled hub CA'), serverCertificate: certificate });
  hub.handle((_req, res) => answerJson(res, 200, { ok: true }));
  return hub;
}

function call(h: TlsTestHub) {
  return new SiloSession(h.state).request('GET', '/silo/v1/studies');
}

describe("the hub's certificate judged by a skewed clock (real TLS)", () => {
  it('accepts a certificate valid from 1 h ahead (this host 1 h behind), within the 24 h tolerance', async () => {
    const h = await hubPresenting(serverCertificate({ validFromMs: Date.now() + HOUR }));
    const res = await call(h);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.bytes.toString('utf8'))).toEqual({ ok: true });
    expect(h.seen).toHaveLength(1);
    expect(h.seen[0]!.clientAuthorized).toBe(true);
    // The answer's Date header is the hub's clock, for the agent's skew estimate.
    expect(Math.abs(Date.parse(res.date!) - Date.now())).toBeLessThan(5_000);
  });

  it('accepts a certificate that expired 1 h ago (this host 1 h ahead)', async () => {
    // Issued 25 h ago for one day: expired an hour ago by this host's clock.
    const h = await hubPresenting(serverCertificate({ issuedAtMs: Date.now() - 25 * HOUR, validityDays: 1 }));
    expect((await call(h)).status).toBe(200);
  });

  it('refuses a certificate valid only from 48 h ahead, saying this host clock appears to be behind', async () => {
    const h = await hubPresenting(serverCertificate({ validFromMs: Date.now() + 48 * HOUR }));
    const refusal = call(h);
    await expect(refusal).rejects.toMatchObject({ code: AgentErrorCode.HUB_NOT_TRUSTED });
    const message = ((await refusal.catch((e: unknown) => e)) as Error).message;
    expect(message).toMatch(/^This host's clock appears to be at least (47 h 59 min|48 h 0 min) \(\d+ s\) behind: /);
    expect(message).toContain("the hub's certificate is valid from");
    expect(message).toContain(`tolerance of ${CERTIFICATE_CLOCK_TOLERANCE_MS / HOUR} h 0 min`);
    expect(message).not.toContain('not the hub this agent was enrolled with');
    expect(h.seen).toHaveLength(0); // refused before the request was sent
  });

  it('refuses a certificate that expired 48 h ago, saying the clock may be ahead or the certificate not renewed', async () => {
    const h = await hubPresenting(serverCertificate({ issuedAtMs: Date.now() - 72 * HOUR, validityDays: 1 }));
    const error = (await call(h).catch((e: unknown) => e)) as Error & { code: string };
    expect(error.code).toBe(AgentErrorCode.HUB_NOT_TRUSTED);
    expect(error.message).toMatch(
      /^This host's clock appears to be at least (47 h 59 min|48 h 0 min) \(\d+ s\) ahead, or the hub's certificate was not renewed/,
    );
    expect(h.seen).toHaveLength(0);
  });
});

describe('what the clock tolerance never lets through (real TLS)', () => {
  const other = longLivedCa('Some other CA');

  it('refuses a server certificate from another CA as not the enrolled hub', async () => {
    const h = await hubPresenting(serverCertificate({ issuedAtMs: Date.now(), validityDays: 1 }, other));
    const error = (await call(h).catch((e: unknown) => e)) as Error & { code: string };
    expect(error.code).toBe(AgentErrorCode.HUB_NOT_TRUSTED);
    expect(error.message).toContain('is not the hub this agent was enrolled with');
    expect(h.seen).toHaveLength(0);
  });

  it('refuses a certificate from another CA that is also not yet valid: the clock verdict hides nothing', async () => {
    // OpenSSL reports the last error only, and the time check comes last: "not yet valid" may be all it says here.
    for (const validFromMs of [Date.now() + HOUR, Date.now() + 48 * HOUR]) {
      const h = await hubPresenting(serverCertificate({ validFromMs }, other));
      const error = (await call(h).catch((e: unknown) => e)) as Error & { code: string };
      expect(error.code).toBe(AgentErrorCode.HUB_NOT_TRUSTED);
      expect(error.message).toContain('is not the hub this agent was enrolled with');
      expect(error.message).not.toContain('clock');
      expect(h.seen).toHaveLength(0);
      await h.close();
      hub = undefined;
    }
  });

  it("refuses the enrolled hub's CA-issued certificate, not yet valid, for another host name", async () => {
    hub = await startTlsTestHub({
      ca: longLivedCa('Enrolled hub CA'),
      serverCertificate: (ca) =>
        issueServerCertificate({
          ca,
          hostnames: ['elsewhere.example'],
          ips: ['127.0.0.2'],
          validityDays: 30,
          now: new Date(Date.now() + HOUR + CLOCK_SKEW_ALLOWANCE_MS),
        }),
    });
    const error = (await call(hub).catch((e: unknown) => e)) as Error & { code: string };
    expect(error.code).toBe(AgentErrorCode.HUB_NOT_TRUSTED);
    expect(error.message).toMatch(/^The hub's certificate does not name 127\.0\.0\.1/);
    expect(hub.seen).toHaveLength(0);
  });
});

describe('kept connections (issue 21, item 3)', () => {
  afterEach(() => closeHubConnections());

  async function countingHub(): Promise<{ hub: TlsTestHub; handshakes: () => number }> {
    hub = await startTlsTestHub({ ca: longLivedCa('Enrolled hub CA') });
    hub.handle((_req, res) => answerJson(res, 200, { ok: true }));
    let handshakes = 0;
    hub.server.on('secureConnection', () => (handshakes += 1));
    return { hub, handshakes: () => handshakes };
  }

  it('makes one verified handshake for consecutive calls, the client certificate presented on each', async () => {
    const { hub: h, handshakes } = await countingHub();
    for (let i = 0; i < 5; i += 1) expect((await call(h)).status).toBe(200);
    expect(handshakes()).toBe(1);
    expect(h.seen).toHaveLength(5);
    expect(h.seen.every((s) => s.clientAuthorized)).toBe(true);
    closeHubConnections();
    expect((await call(h)).status).toBe(200);
    expect(handshakes()).toBe(2);
  });

  it('connects afresh, without an error, once the hub has closed an idle connection', async () => {
    const { hub: h, handshakes } = await countingHub();
    h.server.keepAliveTimeout = 200;
    expect((await call(h)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 600));
    expect((await call(h)).status).toBe(200);
    expect(handshakes()).toBe(2);
  });
});
