import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, api, DATABASE_KINDS, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { AuditTrail } from './audit-trail';

/**
 * A change and its audit record commit together or not at all: when the record cannot be written, the change it
 * describes is rolled back and the request fails. (Before, identity and account changes committed first and wrote
 * their record afterwards, so a crash or an audit failure in between left a change nobody could see in the trail.)
 */
describe.each(DATABASE_KINDS)('identity and account changes with their records (%s database)', (kind) => {
  let hub: TestHub;
  let admin: Record<string, string>;
  let failNextRecord: string | null = null;

  beforeAll(async () => {
    hub = await startTestHub(kind);
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    // The audit trail fails the next record of one action, as a full disk or a lost connection would.
    const trail = hub.app.get(AuditTrail);
    const record = trail.record.bind(trail);
    trail.record = async (event) => {
      if (event.action === failNextRecord) {
        failNextRecord = null;
        throw new Error(`simulated audit failure for ${event.action}`);
      }
      return record(event);
    };
  });
  afterAll(() => hub.dispose());

  async function auditCount(action: string): Promise<number> {
    const res = await api(hub, 'GET', `/api/audit/events?action=${action}&limit=500`, { headers: admin });
    return (res.body as { events: unknown[] }).events.length;
  }

  it('leaves a silo unsuspended when its suspension cannot be recorded', async () => {
    const created = await api(hub, 'POST', '/api/silos', {
      headers: admin,
      json: { name: 'Atomic Suspension', contact: 'it@example.org' },
    });
    const id = (created.body as { silo: { id: string } }).silo.id;
    failNextRecord = 'silo.suspended';
    const refused = await api(hub, 'POST', `/api/silos/${id}/suspend`, { headers: admin, json: { reason: 'test' } });
    expect(refused.status).toBe(500);
    expect(((await api(hub, 'GET', `/api/silos/${id}`, { headers: admin })).body as { status: string }).status).toBe(
      'registered',
    );
    expect(await auditCount('silo.suspended')).toBe(0);
    // With the trail working again the same request succeeds, once, with its record.
    expect(
      (await api(hub, 'POST', `/api/silos/${id}/suspend`, { headers: admin, json: { reason: 'test' } })).status,
    ).toBe(200);
    expect(await auditCount('silo.suspended')).toBe(1);
  });

  it('registers no silo whose registration cannot be recorded', async () => {
    failNextRecord = 'silo.registered';
    const refused = await api(hub, 'POST', '/api/silos', {
      headers: admin,
      json: { name: 'Never Registered', contact: 'it@example.org' },
    });
    expect(refused.status).toBe(500);
    const silos = (await api(hub, 'GET', '/api/silos', { headers: admin })).body as { name: string }[];
    expect(silos.map((s) => s.name)).not.toContain('Never Registered');
  });

  it('creates no account whose creation cannot be recorded, and disables none whose change cannot be', async () => {
    failNextRecord = 'account.created';
    const json = { username: 'unrecorded', password: 'a long enough passphrase', role: 'auditor' };
    expect((await api(hub, 'POST', '/api/users', { headers: admin, json })).status).toBe(500);
    const users = (await api(hub, 'GET', '/api/users', { headers: admin })).body as { username: string }[];
    expect(users.map((u) => u.username)).not.toContain('unrecorded');

    const created = await api(hub, 'POST', '/api/users', { headers: admin, json });
    expect(created.status).toBe(201);
    const id = (created.body as { id: string }).id;
    failNextRecord = 'account.updated';
    expect((await api(hub, 'PATCH', `/api/users/${id}`, { headers: admin, json: { disabled: true } })).status).toBe(
      500,
    );
    const after = (await api(hub, 'GET', '/api/users', { headers: admin })).body as { id: string; disabled: boolean }[];
    expect(after.find((u) => u.id === id)?.disabled).toBe(false);
  });
});
