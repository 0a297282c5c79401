import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { encodeUpdateFrame, float32Bytes, sha256Hex } from '@tessera/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditSigningKeyService } from '../audit/audit-signing-key.service';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import { FilesystemBlobStore } from '../blobs/filesystem-blob-store';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { PrivacyLedgerService } from '../privacy/privacy-ledger.service';
import type { SiloIdentity } from '../silos/silo-identity';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { InMemoryRounds } from './in-memory-rounds.test-util';
import type { RoundsRepository } from './rounds.repository';
import { UpdateAcceptanceService } from './update-acceptance.service';

/** The heart-disease plan's logistic regression: 13 features and a bias. */
const PARAMETERS = 14;

const siloNamed = (name: string): SiloIdentity => ({
  siloId: randomUUID(),
  name,
  certificateSerial: '01',
  certificateFingerprintSha256: 'f'.repeat(64),
  certificateNotAfter: new Date(Date.now() + 86_400_000),
});

function harness() {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-acceptance-'));
  const store = new InMemoryRounds();
  const blobs = new FilesystemBlobStore(dir);
  const written: { event: AuditEvent; tx: number | undefined }[] = [];
  const audit = {
    record: (event: AuditEvent) => Promise.resolve(void written.push({ event, tx: store.openTransaction() })),
  } as unknown as AuditTrail;
  const records = () => written.filter((r) => r.tx === undefined || store.didCommit(r.tx)).map((r) => r.event);
  const { privateKey } = generateKeyPairSync('ed25519');
  const signingKeys = { signingKey: () => Promise.resolve({ privateKey }) } as unknown as AuditSigningKeyService;
  const ledger = { mechanismOf: () => null } as unknown as PrivacyLedgerService;
  const service = new UpdateAcceptanceService(store as unknown as RoundsRepository, blobs, audit, signingKeys, ledger);
  const [a, b] = [siloNamed('Basel'), siloNamed('Bern')];
  const study = store.seedStudy({ plan: heartDiseasePlan([a.siloId, b.siloId]), participants: [a.siloId, b.siloId] });
  const round = store.seedRound({ studyId: study.id }, [a.siloId, b.siloId]);
  /** An update frame for round 1 as an agent sends it; `shift` makes a different update. */
  const frame = (shift = 0, attempt = 1) => {
    const delta = new Float32Array(PARAMETERS).fill(0.02 + shift);
    const bytes = encodeUpdateFrame(
      {
        studyId: study.id,
        round: 1,
        attempt,
        planHash: study.planHash,
        baseModelHash: round.modelHash,
        numExamples: 50,
        length: PARAMETERS,
        payloadSha256: sha256Hex(float32Bytes(delta)),
        l2Norm: Math.hypot(...delta),
        evaluation: { kind: 'exact', loss: 0.6, accuracy: 0.7, auc: null, n: 10, positives: 5 },
        privacy: null,
      },
      delta,
    );
    return () => Readable.from([Buffer.from(bytes)]);
  };
  const storedBlobs = async () => {
    const hashes: string[] = [];
    for await (const blob of blobs.listing().list()) hashes.push(blob.hash);
    return hashes;
  };
  return { dir, store, service, records, a, b, study, round, frame, storedBlobs };
}

async function refusal(promise: Promise<unknown>): Promise<HubErrorCode> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof HubException)) throw new Error(`expected a refusal, got ${String(err)}`);
  return err.code;
}

// The first acceptance loads the model's definition (parameterCount): slow on a loaded machine.
describe('UpdateAcceptanceService over its repository', { timeout: 30_000 }, () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness();
  });
  afterEach(() => rmSync(h.dir, { recursive: true, force: true }));

  it('accepts an update: the row, the blob and one record, with a signed receipt', async () => {
    const { receipt, fresh } = await h.service.accept(h.a, h.study.id, 1, h.frame()());
    expect(fresh).toBe(true);
    expect(receipt).toMatchObject({ studyId: h.study.id, siloId: h.a.siloId, round: 1, attempt: 1 });
    expect(receipt.signature).toBeDefined();
    const row = h.store.participants.find((p) => p.siloId === h.a.siloId)!;
    expect(row).toMatchObject({ status: 'uploaded', updateHash: receipt.updateSha256, numExamples: 50 });
    expect(await h.storedBlobs()).toEqual([receipt.updateSha256]);
    expect(h.records().map((e) => e.action)).toEqual(['round.update.accepted']);
  });

  it('answers an identical re-send with the original receipt, storing and recording nothing twice', async () => {
    const send = h.frame();
    const first = await h.service.accept(h.a, h.study.id, 1, send());
    const again = await h.service.accept(h.a, h.study.id, 1, send());
    expect(again).toEqual({ receipt: first.receipt, fresh: false });
    expect(h.records().map((e) => e.action)).toEqual(['round.update.accepted']);
  });

  it('refuses a different update for a round the silo already reported (DUPLICATE_UPDATE), storing nothing', async () => {
    const first = await h.service.accept(h.a, h.study.id, 1, h.frame()());
    expect(await refusal(h.service.accept(h.a, h.study.id, 1, h.frame(1)()))).toBe(HubErrorCode.DUPLICATE_UPDATE);
    expect(await h.storedBlobs()).toEqual([first.receipt.updateSha256]);
    expect(h.store.participants.find((p) => p.siloId === h.a.siloId)!.updateHash).toBe(first.receipt.updateSha256);
    expect(h.records().map((e) => e.action)).toEqual(['round.update.accepted', 'round.update.refused']);
  });

  it('two different updates from one silo racing: the round lock lets one in, the other is refused', async () => {
    const outcomes = await Promise.allSettled([
      h.service.accept(h.a, h.study.id, 1, h.frame()()),
      h.service.accept(h.a, h.study.id, 1, h.frame(1)()),
    ]);
    const accepted = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value.receipt.updateSha256] : []));
    const refused = outcomes.flatMap((o) =>
      o.status === 'rejected' && o.reason instanceof HubException ? [o.reason.code] : [],
    );
    expect(accepted).toHaveLength(1);
    expect(refused).toEqual([HubErrorCode.DUPLICATE_UPDATE]);
    expect(await h.storedBlobs()).toEqual(accepted);
    expect(h.records().filter((e) => e.action === 'round.update.accepted')).toHaveLength(1);
  });

  it('after the round closed, answers a re-send with its receipt and refuses any other update', async () => {
    const send = h.frame();
    const first = await h.service.accept(h.a, h.study.id, 1, send());
    await h.store.inTransaction((tx) => tx.endAttempt(h.round.id, { status: 'closed', closedAt: new Date() }));
    const again = await h.service.accept(h.a, h.study.id, 1, send());
    expect(again).toEqual({ receipt: first.receipt, fresh: false });
    expect(await refusal(h.service.accept(h.a, h.study.id, 1, h.frame(1)()))).toBe(HubErrorCode.DUPLICATE_UPDATE);
    // A silo that never reported gets the round's own refusal.
    expect(await refusal(h.service.accept(h.b, h.study.id, 1, h.frame()()))).toBe(HubErrorCode.ROUND_CLOSED);
    expect(await h.storedBlobs()).toEqual([first.receipt.updateSha256]);
  });

  it('refuses an update trained on another model before storing a byte', async () => {
    await h.store.inTransaction(async (tx) => {
      await tx.lockRound(h.round.id);
      await tx.endAttempt(h.round.id, { status: 'retried', closedAt: new Date() });
      await tx.insertRound({ ...h.round, attempt: 2, modelHash: 'ef'.repeat(32), status: 'open' });
    });
    expect(await refusal(h.service.accept(h.b, h.study.id, 1, h.frame(0, 2)()))).toBe(HubErrorCode.WRONG_MODEL);
    expect(await h.storedBlobs()).toEqual([]);
  });
});
