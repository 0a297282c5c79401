import { ChainBreakCode, generateSigningKey, publicKeyFingerprint, signCheckpoint } from '@tessera/audit';
import { beforeEach, describe, expect, it } from 'vitest';
import { SYSTEM_ACTOR } from './audit-trail';
import { auditServicesOver, InMemoryAudit } from './in-memory-audit.test-util';

const event = (n: number) => ({ actor: SYSTEM_ACTOR, action: 'test.event', details: { n } });

/** A chain of `length` records (the key's creation first), with a checkpoint at each seq of `at`. */
async function chainOf(store: InMemoryAudit, length: number, at: number[]) {
  const services = auditServicesOver(store);
  await services.keys.signingKey();
  for (let seq = 2; seq <= length; seq += 1) {
    await store.append(event(seq));
    if (at.includes(seq)) await services.checkpoints.checkpointNow();
  }
  return services;
}

describe('AuditVerificationService over its repository', () => {
  let store: InMemoryAudit;
  beforeEach(() => {
    store = new InMemoryAudit();
  });

  it('verifies an intact chain read in batches, and every checkpoint on it', async () => {
    // Past one batch of 1000 records, with a checkpoint on each side of the batch boundary.
    const { verification } = await chainOf(store, 1205, [10, 999, 1000, 1001, 1205]);
    const result = await verification.verifyStoredChain();
    expect(result).toMatchObject({
      ok: true,
      records: 1205,
      headSeq: 1205,
      headHash: store.chainRecords[1204]!.hash,
      checkpoints: { total: 5, verified: 5 },
      firstBroken: null,
      problems: [],
    });
  });

  it('names the first broken link of a record edited behind the hub, and the checkpoints past it', async () => {
    const { verification } = await chainOf(store, 60, [20, 50]);
    store.tamper(40, { n: 'changed' });
    const result = await verification.verifyStoredChain();
    expect(result.ok).toBe(false);
    expect(result.records).toBe(39);
    expect(result.headHash).toBeNull();
    expect(result.firstBroken).toMatchObject({ code: ChainBreakCode.HashMismatch, seq: 40 });
    // The checkpoint before the break verified; the one after it is counted, not verified.
    expect(result.checkpoints).toEqual({ total: 2, verified: 1 });
  });

  it('reports records cut off the end below a signed checkpoint as TRUNCATED', async () => {
    const { verification } = await chainOf(store, 30, [30]);
    store.cutFrom(28);
    const result = await verification.verifyStoredChain();
    expect(result.headSeq).toBe(27);
    expect(result.firstBroken).toMatchObject({ code: ChainBreakCode.Truncated, seq: 28 });
  });

  it('reports a checkpoint of an unknown key, and one whose signed hash is not the chain’s', async () => {
    const { verification, keys } = await chainOf(store, 30, []);
    const stranger = generateSigningKey();
    store.plantCheckpoint(
      signCheckpoint(
        { seq: 10, headHash: store.chainRecords[9]!.hash, time: new Date().toISOString(), count: 10 },
        stranger.privateKeyPem,
      ),
    );
    const key = await keys.signingKey();
    store.plantCheckpoint(
      signCheckpoint({ seq: 20, headHash: 'f'.repeat(64), time: new Date().toISOString(), count: 20 }, key.privateKey),
    );
    const result = await verification.verifyStoredChain();
    expect(result.records).toBe(30);
    expect(result.problems.map((p) => [p.code, p.seq])).toEqual([
      ['CHECKPOINT_KEY_UNKNOWN', 10],
      ['CHECKPOINT_MISMATCH', 20],
    ]);
    expect(result.problems[0]!.message).toContain(publicKeyFingerprint(stranger.publicKeyPem));
    expect(result.firstBroken?.seq).toBe(10);
    expect(result.checkpoints).toEqual({ total: 2, verified: 0 });
  });

  it('leaves records and a checkpoint appended while it runs to the next run, without calling them a truncation', async () => {
    const { verification, checkpoints } = await chainOf(store, 20, [20]);
    const headSeq = store.chain.headSeq;
    store.chain.headSeq = async () => {
      const head = await headSeq();
      // Another request appends and checkpoints just after the head was read.
      await store.append(event(21));
      await checkpoints.checkpointNow();
      return head;
    };
    const result = await verification.verifyStoredChain();
    expect(result).toMatchObject({ ok: true, records: 20, headSeq: 20, checkpoints: { total: 1, verified: 1 } });
    expect(store.storedCheckpoints.map((c) => c.seq)).toEqual([20, 21]);
  });

  it('verifies an empty chain as ok with no head', async () => {
    const { verification } = auditServicesOver(store);
    expect(await verification.verifyStoredChain()).toMatchObject({ ok: true, records: 0, headSeq: 0, headHash: null });
  });
});
