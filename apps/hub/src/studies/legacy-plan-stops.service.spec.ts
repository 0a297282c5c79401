import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AuditCheckpointService } from '../audit/audit-checkpoint.service';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import { InMemoryStudies } from './in-memory-studies.test-util';
import type { LegacyPlanStopsRepository } from './legacy-plan-stops.repository';
import { LegacyPlanStopsService } from './legacy-plan-stops.service';

function harness() {
  const store = new InMemoryStudies();
  const written: { event: AuditEvent; tx: number | undefined }[] = [];
  let failOnce = false;
  const audit: AuditTrail = {
    // Asynchronous like the real chain (it takes the chain's lock), so two boots interleave.
    record: async (event: AuditEvent) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      written.push({ event, tx: store.openTransaction() });
      if (failOnce) {
        failOnce = false;
        throw new Error('audit chain unavailable');
      }
    },
  };
  const records = () => written.filter((r) => r.tx === undefined || store.didCommit(r.tx));
  let checkpoints = 0;
  const checkpointer = {
    checkpointNow: () => Promise.resolve(void checkpoints++),
  } as unknown as AuditCheckpointService;
  const hub = () =>
    new LegacyPlanStopsService(store.legacyStops as unknown as LegacyPlanStopsRepository, audit, checkpointer);
  const stop = (minute: number) => {
    const studyId = randomUUID();
    store.seedLegacyStop({
      studyId,
      previousStatus: 'running',
      reason: 'plan predates the current format',
      abandonedRounds: 1,
      stoppedAt: new Date(Date.UTC(2026, 0, 1, 0, minute)),
      planVersion: 2,
      planHash: 'a'.repeat(64),
    });
    return studyId;
  };
  return { store, records, hub, stop, failNextRecord: () => (failOnce = true), checkpoints: () => checkpoints };
}

describe('LegacyPlanStopsService over its repository', () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness();
  });

  it('records each pending stop once, oldest first, in the transaction that marks it recorded', async () => {
    const later = h.stop(20);
    const earlier = h.stop(10);
    await h.hub().onApplicationBootstrap();
    expect(h.records().map((r) => [r.event.action, r.event.subject])).toEqual([
      ['study.stopped', { studyId: earlier }],
      ['study.stopped', { studyId: later }],
    ]);
    expect(h.records()[0]!.event.details).toEqual({
      reason: 'plan predates the current format',
      legacyPlan: true,
      previousStatus: 'running',
      abandonedRounds: 1,
      stoppedAt: '2026-01-01T00:10:00.000Z',
      planVersion: 2,
      planHash: 'a'.repeat(64),
    });
    expect(new Set(h.records().map((r) => r.tx)).size).toBe(1);
    expect(h.store.stopRows.every((r) => r.auditedAt !== null)).toBe(true);
    expect(h.checkpoints()).toBe(1);
    expect(await h.hub().recordPendingStops()).toBe(0);
    expect(h.checkpoints()).toBe(1);
  });

  it('two hubs booting together record each stop once: the second skips the rows the first holds', async () => {
    const ids = [h.stop(1), h.stop(2), h.stop(3)];
    const counts = await Promise.all([h.hub().recordPendingStops(), h.hub().recordPendingStops()]);
    expect(counts.sort()).toEqual([0, 3]);
    expect(h.records().map((r) => r.event.subject?.studyId)).toEqual(ids);
  });

  it('leaves every stop pending when a record fails, so the next boot records it', async () => {
    h.stop(1);
    h.stop(2);
    h.failNextRecord();
    await expect(h.hub().recordPendingStops()).rejects.toThrow('audit chain unavailable');
    expect(h.records()).toEqual([]);
    expect(h.store.stopRows.every((r) => r.auditedAt === null)).toBe(true);
    expect(await h.hub().recordPendingStops()).toBe(2);
  });
});
