import { randomUUID } from 'node:crypto';
import { auditActorKey } from '@tessera/protocol';
import { beforeEach, describe, expect, it } from 'vitest';
import { SYSTEM_ACTOR, type AuditActor } from './audit-trail';
import { auditServicesOver, InMemoryAudit } from './in-memory-audit.test-util';

describe('AuditLogService over its repository', () => {
  let store: InMemoryAudit;
  let log: ReturnType<typeof auditServicesOver>['log'];
  const append = (n: number, actor: AuditActor = SYSTEM_ACTOR, action = 'test.event') =>
    store.append({ actor, action, details: { n } });
  beforeEach(() => {
    store = new InMemoryAudit();
    log = auditServicesOver(store).log;
  });

  it('pages forwards with a cursor, one record past the page telling whether another follows', async () => {
    for (let n = 1; n <= 5; n += 1) await append(n);
    const first = await log.listEvents({}, { limit: 2, order: 'asc' });
    expect(first.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(first.nextCursor).toBe(2);
    const second = await log.listEvents({}, { limit: 2, order: 'asc', cursor: 2 });
    expect(second.events.map((e) => e.seq)).toEqual([3, 4]);
    const last = await log.listEvents({}, { limit: 2, order: 'asc', cursor: second.nextCursor! });
    expect(last.events.map((e) => e.seq)).toEqual([5]);
    expect(last.nextCursor).toBeNull();
    // A page that ends exactly at the last record is the last page.
    expect((await log.listEvents({}, { limit: 5, order: 'asc' })).nextCursor).toBeNull();
  });

  it('pages backwards from the newest record, within the filter', async () => {
    for (let n = 1; n <= 6; n += 1) await append(n, SYSTEM_ACTOR, n % 2 === 0 ? 'silo.enrolled' : 'study.started');
    const first = await log.listEvents({ action: 'silo.' }, { limit: 2, order: 'desc' });
    expect(first.events.map((e) => e.seq)).toEqual([6, 4]);
    const next = await log.listEvents({ action: 'silo.' }, { limit: 2, order: 'desc', cursor: first.nextCursor! });
    expect(next.events.map((e) => e.seq)).toEqual([2]);
    expect(next.nextCursor).toBeNull();
  });

  it("names each actor of a page once: accounts and silos by their current names, the hub's components, the unknown", async () => {
    const user = randomUUID();
    const silo = randomUUID();
    store.users.push({ id: user, name: 'alice' });
    store.silos.push({ id: silo, name: 'Basel' });
    await append(1, { type: 'user', id: user, name: 'alice-before-rename' });
    await append(2, { type: 'silo', id: silo });
    await append(3, SYSTEM_ACTOR);
    await append(4, { type: 'system', id: 'new-component' });
    await append(5, { type: 'user', id: 'unknown', name: 'mallory' });
    await append(6, { type: 'silo', id: randomUUID(), name: 'Gone' });
    await append(7, { type: 'user', id: user, name: 'alice-before-rename' });
    const page = await log.listEvents({}, { limit: 10, order: 'asc' });
    const names = page.events.map((e) => page.actorNames[auditActorKey(e.actor)]);
    expect(names).toEqual([
      'alice',
      'Basel',
      'Tessera hub',
      'Tessera hub (new-component)',
      'mallory (no such account)',
      'Gone',
      'alice',
    ]);
    expect(Object.keys(page.actorNames)).toHaveLength(6);
  });

  it('writes the filtered records as CSV in batches, header first, with resolved names and formula cells defused', async () => {
    const silo = randomUUID();
    store.silos.push({ id: silo, name: '=HYPERLINK("x")' });
    for (let n = 1; n <= 1001; n += 1) await append(n, { type: 'silo', id: silo });
    await append(1002, SYSTEM_ACTOR, 'other.event');
    let text = '';
    for await (const chunk of log.csv({ action: 'test.' })) text += chunk;
    const lines = text.split('\r\n');
    expect(lines[0]).toBe(
      'seq,time,actor_type,actor_id,actor_name,action,study_id,silo_id,subject,details,prev_hash,hash',
    );
    expect(lines).toHaveLength(1 + 1001 + 1); // the header, the records, and the empty string after the last CRLF
    expect(lines[1]).toContain(`,silo,${silo},"'=HYPERLINK(""x"")",test.event,`);
    expect(lines[1001]!.startsWith('1001,')).toBe(true);
  });
});
