import type { SiloAgentView, SiloView } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { siloHealth } from './silo-health.js';

const HUB_NOW = Date.parse('2026-12-06T12:00:00Z');
const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();
const studyId = '6f1d2c3b-4a59-4e7f-8b0c-1d2e3f4a5b6c';

function agent(over: Partial<SiloAgentView> = {}): SiloAgentView {
  return {
    openRequests: 0,
    lastSeen: { silo: iso(HUB_NOW - 5_000), enroll: iso(HUB_NOW - 10 * DAY) },
    software: { version: '0.1.0', platform: 'linux-x64', node: '22.11.0' },
    task: null,
    offlineAfterSeconds: 40,
    observedAt: iso(HUB_NOW),
    ...over,
  };
}

function silo(over: Partial<SiloView> = {}): SiloView {
  const cert = { serial: 'ab12', notAfter: iso(HUB_NOW + 20 * DAY), status: 'active' };
  return {
    id: '0d9c8b7a-6f5e-4d3c-9b1a-2f3e4d5c6b7a',
    name: 'Cleveland',
    contact: 'it@cleveland.example',
    status: 'enrolled',
    suspendedReason: null,
    lastSeenAt: iso(HUB_NOW - 5_000),
    createdAt: iso(HUB_NOW - 30 * DAY),
    certificate: cert,
    latestCertificate: { ...cert, revokedAt: null, revocationReason: null },
    enrollmentPending: null,
    agent: agent(),
    ...over,
  };
}

describe('silo health', () => {
  it('is online while a long poll is open, however long ago the poll began', () => {
    const s = silo({ agent: agent({ openRequests: 1, lastSeen: { silo: iso(HUB_NOW - 25_000), enroll: null } }) });
    expect(siloHealth(s, HUB_NOW)).toMatchObject({ connectivity: 'online', connected: true, standing: 'enrolled' });
  });

  it('goes offline once the last request ended longer ago than the long-poll interval and its grace', () => {
    const ended = (ago: number) => silo({ agent: agent({ lastSeen: { silo: iso(HUB_NOW - ago), enroll: null } }) });
    expect(siloHealth(ended(39_000), HUB_NOW).connectivity).toBe('online');
    expect(siloHealth(ended(41_000), HUB_NOW).connectivity).toBe('offline');
  });

  it("judges on the hub's clock moved on since the answer, not on the browser's clock", () => {
    const s = silo({ agent: agent({ lastSeen: { silo: iso(HUB_NOW - 20_000), enroll: null } }) });
    const browserAhead = HUB_NOW + 3_600_000; // an hour fast
    expect(siloHealth(s, browserAhead, browserAhead).connectivity).toBe('online');
    // 25 s after the answer arrived, the same answer says offline (20 + 25 > 40).
    expect(siloHealth(s, browserAhead + 25_000, browserAhead).connectivity).toBe('offline');
  });

  it('does not trust an open poll in an answer older than the window (the agent may have died since)', () => {
    const s = silo({ agent: agent({ openRequests: 1, lastSeen: { silo: iso(HUB_NOW - 1_000), enroll: null } }) });
    expect(siloHealth(s, HUB_NOW + 60_000, HUB_NOW).connectivity).toBe('offline');
  });

  it('shows the current task only while the agent is online', () => {
    const task = { kind: 'train' as const, studyId, round: 4, since: iso(HUB_NOW - 60_000) };
    expect(siloHealth(silo({ agent: agent({ task }) }), HUB_NOW).task).toEqual(task);
    const gone = silo({ agent: agent({ task, lastSeen: { silo: iso(HUB_NOW - 120_000), enroll: null } }) });
    expect(siloHealth(gone, HUB_NOW)).toMatchObject({ connectivity: 'offline', task: null });
  });

  it('says never for an agent the hub has not seen', () => {
    const s = silo({ lastSeenAt: null, agent: agent({ lastSeen: { silo: null, enroll: null }, software: null }) });
    expect(siloHealth(s, HUB_NOW).connectivity).toBe('never');
  });

  it('lets a revoked certificate win: never "enrolled", never "online"', () => {
    const revoked = silo({
      certificate: null,
      latestCertificate: {
        serial: 'ab12',
        notAfter: iso(HUB_NOW + 20 * DAY),
        status: 'revoked',
        revokedAt: iso(HUB_NOW - 1_000),
        revocationReason: 'key leaked',
      },
      agent: agent({ openRequests: 1 }),
    });
    expect(siloHealth(revoked, HUB_NOW)).toMatchObject({
      standing: 'revoked',
      certificate: 'revoked',
      connectivity: 'refused',
      connected: false,
    });
    // Suspended and revoked: the certificate still wins.
    expect(siloHealth({ ...revoked, status: 'suspended' }, HUB_NOW).standing).toBe('revoked');
    // Revoked with a new bundle issued: the silo awaits its enrollment.
    const reissued = {
      ...revoked,
      status: 'registered' as const,
      enrollmentPending: { expiresAt: iso(HUB_NOW + DAY) },
    };
    expect(siloHealth(reissued, HUB_NOW)).toMatchObject({ standing: 'enrollment pending', connectivity: 'refused' });
  });

  it('lets an expired certificate win the same way', () => {
    const s = silo({ certificate: { serial: 'ab12', notAfter: iso(HUB_NOW - DAY), status: 'active' } });
    expect(siloHealth(s, HUB_NOW)).toMatchObject({
      standing: 'expired',
      certificate: 'expired',
      connectivity: 'refused',
      certificateDaysLeft: -1,
    });
  });

  it('warns of a certificate close to its end, and keeps the silo enrolled', () => {
    const s = silo({ certificate: { serial: 'ab12', notAfter: iso(HUB_NOW + 3 * DAY + 1), status: 'active' } });
    expect(siloHealth(s, HUB_NOW)).toMatchObject({
      certificate: 'expiring',
      certificateDaysLeft: 3,
      standing: 'enrolled',
    });
  });

  it('shows a suspended silo whose agent keeps asking as suspended and online (it waits to be resumed)', () => {
    const s = silo({
      status: 'suspended',
      suspendedReason: 'audit',
      agent: agent({ lastSeen: { silo: iso(HUB_NOW - 2_000), enroll: null } }),
    });
    expect(siloHealth(s, HUB_NOW)).toMatchObject({ standing: 'suspended', connectivity: 'online' });
  });

  it('falls back to the two-minute window with a hub that does not send the agent facts', () => {
    const { agent: _a, latestCertificate: _l, ...old } = silo({ lastSeenAt: iso(HUB_NOW - 90_000) });
    expect(siloHealth(old, HUB_NOW).connectivity).toBe('online');
    expect(siloHealth({ ...old, lastSeenAt: iso(HUB_NOW - 150_000) }, HUB_NOW).connectivity).toBe('offline');
  });
});
