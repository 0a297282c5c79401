import { verifyCheckpoint } from '@tessera/audit';
import { beforeEach, describe, expect, it } from 'vitest';
import { SYSTEM_ACTOR } from './audit-trail';
import { auditServicesOver, InMemoryAudit } from './in-memory-audit.test-util';

const event = (n: number) => ({ actor: SYSTEM_ACTOR, action: 'test.event', details: { n } });

describe('AuditCheckpointService over its repository', () => {
  let store: InMemoryAudit;
  beforeEach(() => {
    store = new InMemoryAudit();
  });

  it("signs the head once: the key's creation first, then a checkpoint covering it", async () => {
    const { checkpoints, keys } = auditServicesOver(store);
    const checkpoint = await checkpoints.checkpointIfNew();
    expect(store.chainRecords.map((r) => r.action)).toEqual(['audit.signing-key.created']);
    expect(checkpoint).toMatchObject({ seq: 1, count: 1, headHash: store.chainRecords[0]!.hash });
    const key = await keys.publicKey();
    expect(verifyCheckpoint(checkpoint, key.publicKeyPem).ok).toBe(true);
    // Nothing appended since: the same checkpoint, not a second one.
    expect(await checkpoints.checkpointIfNew()).toEqual(checkpoint);
    expect(await checkpoints.checkpointNow()).toEqual(checkpoint);
    expect(store.storedCheckpoints).toEqual([checkpoint]);
  });

  it('signs the new head once records were appended, and lists checkpoints after a seq', async () => {
    const { checkpoints } = auditServicesOver(store);
    const first = await checkpoints.checkpointNow();
    for (let n = 0; n < 3; n += 1) await store.append(event(n));
    const second = await checkpoints.checkpointNow();
    expect(second).toMatchObject({ seq: 4, count: 4, headHash: store.chainRecords[3]!.hash });
    expect(await checkpoints.list(0, 10)).toEqual([first, second]);
    expect(await checkpoints.list(1, 10)).toEqual([second]);
    expect(await checkpoints.list(0, 1)).toEqual([first]);
  });

  it('signs one checkpoint when two replicas checkpoint the same head at once', async () => {
    const one = auditServicesOver(store);
    const two = auditServicesOver(store);
    // Both hold the key already, so nothing but the chain lock orders their transactions.
    await Promise.all([one.keys.signingKey(), two.keys.signingKey()]);
    for (let n = 0; n < 5; n += 1) await store.append(event(n));
    const [a, b] = await Promise.all([one.checkpoints.checkpointIfNew(), two.checkpoints.checkpointIfNew()]);
    expect(a).toEqual(b);
    expect(store.storedCheckpoints).toEqual([a]);
  });
});
