import { randomUUID } from 'node:crypto';
import { verifyBundle } from '@tessera/audit';
import { beforeEach, describe, expect, it } from 'vitest';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { SYSTEM_ACTOR } from './audit-trail';
import { auditServicesOver, InMemoryAudit } from './in-memory-audit.test-util';

const ADMIN = { type: 'user', id: 'admin-1', name: 'root' } as const;

describe('AuditExportService over its repository', () => {
  let store: InMemoryAudit;
  let services: ReturnType<typeof auditServicesOver>;
  const other = (n: number) => store.append({ actor: SYSTEM_ACTOR, action: 'test.event', details: { n } });
  const ofStudy = (studyId: string, action: string) => store.append({ actor: ADMIN, action, subject: { studyId } });
  beforeEach(async () => {
    store = new InMemoryAudit();
    services = auditServicesOver(store);
    await services.keys.signingKey(); // record 1
  });

  it('refuses a head the chain does not reach, naming the current head', async () => {
    await other(2);
    expect(await services.exporter.headAt(2)).toEqual({ seq: 2, hash: store.chainRecords[1]!.hash });
    const refusal = await services.exporter.headAt(9).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(HubException);
    expect(refusal).toMatchObject({ code: HubErrorCode.VALIDATION_FAILED });
    expect((refusal as Error).message).toBe('upTo 9 is not in the audit chain, whose head is #2.');
  });

  it("bundles the whole chain from genesis under a fresh checkpoint of its head, which verifies under the hub's key", async () => {
    for (let n = 2; n <= 4; n += 1) await other(n);
    const bundle = await services.exporter.exportBundle({}, { title: 'whole hub' });
    expect(bundle.records.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect(store.storedCheckpoints.map((c) => c.seq)).toEqual([4]);
    expect(bundle.study).toMatchObject({ title: 'whole hub' });
    const key = await services.keys.publicKey();
    expect(verifyBundle(bundle, { trustedPublicKey: key.publicKeyPem }).ok).toBe(true);
  });

  it("starts a study's segment just after the last checkpoint before its first record, which anchors it", async () => {
    const studyId = randomUUID();
    for (let n = 2; n <= 4; n += 1) await other(n);
    await services.checkpoints.checkpointNow(); // at 4
    await other(5);
    await ofStudy(studyId, 'study.started'); // 6
    await services.checkpoints.checkpointNow(); // at 6
    await ofStudy(studyId, 'round.closed'); // 7
    const bundle = await services.exporter.exportBundle({ studyId }, (head) => Promise.resolve({ head: head.seq }));
    expect(bundle.records.map((r) => r.seq)).toEqual([5, 6, 7]);
    expect(bundle.study).toMatchObject({ head: 7 });
    expect(verifyBundle(bundle).ok).toBe(true);
  });

  it('starts at genesis when the study’s first record precedes every checkpoint', async () => {
    const studyId = randomUUID();
    await ofStudy(studyId, 'study.started'); // 2
    await services.checkpoints.checkpointNow();
    await other(3);
    const bundle = await services.exporter.exportBundle({ studyId });
    expect(bundle.records[0]!.seq).toBe(1);
  });

  it("covers an earlier head while only exports followed it, and refuses one behind a change of the study's state", async () => {
    const studyId = randomUUID();
    await ofStudy(studyId, 'study.started'); // 2
    await ofStudy(studyId, 'report.exported'); // 3
    await ofStudy(randomUUID(), 'round.closed'); // 4: another study's change
    const bundle = await services.exporter.exportBundle({ studyId }, {}, 2);
    expect(bundle.records.at(-1)!.seq).toBe(2);
    // The hub-wide bundle counts any study's change.
    await expect(services.exporter.exportBundle({}, {}, 2)).rejects.toMatchObject({ code: HubErrorCode.CONFLICT });
    await ofStudy(studyId, 'round.closed'); // 5
    const refusal = await services.exporter.exportBundle({ studyId }, {}, 2).catch((e: unknown) => e);
    expect(refusal).toMatchObject({ code: HubErrorCode.CONFLICT });
    expect((refusal as Error).message).toContain('(record #5, round.closed)');
  });

  it('reads the recorded state from the state tables, of one study or of the whole hub', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const silo = randomUUID();
    store.state.participations.push(
      { studyId: a, siloId: silo, round: 1, attempt: 1, status: 'uploaded', updateHash: `${'ab'.repeat(32)}  ` },
      { studyId: a, siloId: silo, round: 1, attempt: 1, status: 'uploaded', updateHash: null },
      { studyId: a, siloId: silo, round: 2, attempt: 1, status: 'evaluated', updateHash: null },
      { studyId: a, siloId: silo, round: 2, attempt: 2, status: 'failed', updateHash: null },
      { studyId: a, siloId: silo, round: 3, attempt: 1, status: 'invited', updateHash: null },
      { studyId: b, siloId: silo, round: 1, attempt: 1, status: 'failed', updateHash: null },
    );
    store.state.charges.push({ studyId: a, siloId: silo, round: 1, attempt: 1, kind: 'train' });
    store.state.rounds.push(
      { studyId: a, round: 1, attempt: 1, status: 'closed' },
      { studyId: a, round: 2, attempt: 1, status: 'failed' },
      { studyId: a, round: 2, attempt: 2, status: 'open' },
    );
    store.state.ended.push({ studyId: a, status: 'completed' });
    const ids = { studyId: a, siloId: silo };
    const state = await services.exporter.recordedState({ studyId: a });
    expect(state.items).toEqual([
      { kind: 'update.accepted', ...ids, round: 1, attempt: 1, updateSha256: 'ab'.repeat(32) },
      { kind: 'evaluation.reported', ...ids, round: 2, attempt: 1 },
      { kind: 'silo.failed', ...ids, round: 2, attempt: 2 },
      { kind: 'privacy.charged', ...ids, round: 1, attempt: 1, task: 'train' },
      { kind: 'round.closed', studyId: a, round: 1, attempt: 1 },
      { kind: 'round.opened', studyId: a, round: 2, attempt: 1 },
      { kind: 'study.ended', studyId: a, status: 'completed' },
    ]);
    expect((await services.exporter.recordedState({})).items).toHaveLength(8);
    // An id that is no uuid scopes nothing (no study has it): the whole hub's state.
    expect((await services.exporter.recordedState({ studyId: 'not-a-uuid' })).items).toHaveLength(8);
  });
});
