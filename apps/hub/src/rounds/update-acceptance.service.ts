import { Inject, Injectable } from '@nestjs/common';
import { signReceipt } from '@tessera/audit';
import { metricsOfEvaluation, updateLengthOf, type UpdateHeader, type UpdateReceipt } from '@tessera/protocol';
import type { Readable } from 'node:stream';
import { AuditSigningKeyService } from '../audit/audit-signing-key.service';
import { AuditTrail } from '../audit/audit-trail';
import type { StagedBlob } from '../blobs/blob-store';
import { BlobStore } from '../blobs/blob-store';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { faultPoint } from '../faults/fault-point.util';
import { PrivacyLedgerService } from '../privacy/privacy-ledger.service';
import type { SiloIdentity } from '../silos/silo-identity';
import type { StudyEntity } from '../study-state/study.entity';
import { parameterCount } from './model-math';
import { updateReleaseProblem } from './release-check.util';
import { checkPrivacyReport, recordRefusal } from './round-access.util';
import { assertOpen } from '../study-state/open-round.util';
import type { RoundEntity } from '../study-state/round.entity';
import type { RoundParticipantEntity } from '../study-state/round-participant.entity';
import { GroupCommit, type MemberOutcome } from './group-commit';
import { RoundsRepository, type AcceptedUpload, type RoundsUnitOfWork, type UploadFields } from './rounds.repository';
import { receiveUpdate, type ReceivedUpdate } from './update-receiver';

/** What acceptance answered: the signed receipt, and whether this call changed state (the round engine then wakes). */
export interface UpdateAcceptance {
  receipt: UpdateReceipt;
  fresh: boolean;
}

/**
 * At most this many acceptances share one transaction (ADR 0022), so a transaction stays short: 64 acceptances of
 * one round write 64 rows, their ledger reports and 64+ audit records in a few tens of milliseconds.
 */
export const ACCEPTANCE_BATCH_CAP = 64;

/** One update waiting for its acceptance transaction: everything checked before it, its bytes staged and closed. */
interface PendingAcceptance {
  silo: SiloIdentity;
  study: StudyEntity;
  received: ReceivedUpdate;
  staged: StagedBlob;
  /** The silo's accepted updates for this round number, read before the upload (earlier attempts). */
  accepted: AcceptedUpload[];
  /** The staged bytes' commit, once started: a batch run again after a failure reuses it (a rename happens once). */
  committed?: Promise<{ hash: string; size: number }>;
}

/** What an accepted upload wrote on its row (its blob's hash and the time, for the receipt). */
type WrittenUpload = UploadFields & { updateHash: string; reportedAt: Date };

/** An upload's writes failed in a batch run without savepoints: its transaction is lost, the batch runs again. */
class WriteFailed extends Error {
  constructor(readonly failure: unknown) {
    super('an acceptance failed after its first write');
  }
}

/**
 * Accepts silos' model updates (docs/reliability.md):
 * - nothing is stored for a refused upload: the bytes stay staged until every check passed, and are committed to the
 *   blob store inside the acceptance transaction, just before the row that references them;
 * - the update's row, its privacy report and its audit record commit in ONE transaction (the record joins it);
 * - a re-send of an accepted update (same silo, study, round and frame hash) is answered with the original receipt,
 *   also after the round closed or the study ended: an agent killed before it read its receipt retries safely; a
 *   different update for a round the silo already had accepted is refused (DUPLICATE_UPDATE);
 * - acceptances of one round share transactions (group commit, ADR 0022): while one acceptance transaction of the
 *   round runs, the next uploads wait, and the next transaction takes them all (up to ACCEPTANCE_BATCH_CAP) under one
 *   round lock: refusals are decided before an upload writes anything, and an upload whose writes fail runs again in
 *   a savepoint of its own (storeBatch), so a refusal or a failure of one leaves the others accepted. Receipts are
 *   signed after COMMIT, outside every lock.
 */
@Injectable()
export class UpdateAcceptanceService {
  private readonly batches: GroupCommit<string, PendingAcceptance, { receipt: UpdateReceipt; fresh: boolean }>;

  constructor(
    private readonly repository: RoundsRepository,
    private readonly blobs: BlobStore,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
    private readonly signingKeys: AuditSigningKeyService,
    private readonly ledger: PrivacyLedgerService,
  ) {
    this.batches = new GroupCommit(ACCEPTANCE_BATCH_CAP, (roundId, members) => this.storeBatch(roundId, members));
  }

  /** Uploads of this round attempt whose bytes are in and whose acceptance transaction has not ended yet. */
  pendingAcceptances(roundId: string): number {
    return this.batches.pending(roundId);
  }

  async accept(silo: SiloIdentity, studyId: string, roundNumber: number, body: Readable): Promise<UpdateAcceptance> {
    const study = await this.repository.studyOpenTo(silo, studyId);
    const accepted = await this.repository.acceptedUploads(silo.siloId, studyId, roundNumber);
    let target: { study: StudyEntity; round: RoundEntity } | null = null;
    let notOpen: unknown = null;
    try {
      target = await this.repository.openRoundFor(silo, studyId, roundNumber);
    } catch (err) {
      // Only an identical re-send of an accepted update can still be answered (with its receipt).
      if (accepted.length === 0) {
        body.resume();
        throw err;
      }
      notOpen = err;
    }
    if (target?.round.kind === 'evaluate') {
      body.resume();
      // A training round whose number now only evaluates (the privacy budget stopped its training) closed for
      // updates for good: ROUND_CLOSED, which settles an agent's re-send of a release made for it. Only the final
      // evaluation round, which never trained, answers WRONG_ROUND.
      const closedForUpdates = roundNumber <= study.plan.training.rounds;
      throw new HubException(
        closedForUpdates ? HubErrorCode.ROUND_CLOSED : HubErrorCode.WRONG_ROUND,
        closedForUpdates
          ? `Round ${roundNumber} takes no more updates: it only evaluates now, within the approved privacy plan.`
          : `Round ${roundNumber} only evaluates: post an evaluation report, not an update.`,
      );
    }
    if (target && study.plan.secureAggregation && target.round.kind === 'train') {
      body.resume();
      throw new HubException(
        HubErrorCode.UPDATE_MALFORMED,
        `Round ${roundNumber} runs secure aggregation: the hub takes only a masked input (SECAGG_API), never an update in the clear.`,
      );
    }
    // SCAFFOLD's update is the model delta followed by the control delta (ADR 0019).
    const length = updateLengthOf(study.plan, parameterCount(study.plan));
    const staged = await this.blobs.stage();
    try {
      let received: ReceivedUpdate;
      try {
        received = await receiveUpdate(body, staged, (h) =>
          this.checkHeader(study, roundNumber, target?.round ?? null, length, h),
        );
      } catch (err) {
        await recordRefusal(this.audit, silo, studyId, roundNumber, err);
        throw err;
      }
      if (!target) {
        const resent = accepted.find((a) => a.updateHash === received.frameSha256);
        if (resent) return { receipt: await this.signed(this.receiptOf(silo, studyId, resent)), fresh: false };
        const refusal = new HubException(
          HubErrorCode.DUPLICATE_UPDATE,
          `This silo's update for round ${roundNumber} was accepted earlier (sha256 ${accepted[0]!.updateHash.slice(0, 12)}…); a different one is refused (${(notOpen as Error).message})`,
        );
        await recordRefusal(this.audit, silo, studyId, roundNumber, refusal);
        throw refusal;
      }
      // The file closed (or the staging object complete) before the transaction: it then waits on a rename only.
      await staged.finish();
      const outcome = await this.batches
        .submit(target.round.id, { silo, study: target.study, received, staged, accepted })
        .catch(async (err: unknown) => {
          await recordRefusal(this.audit, silo, studyId, roundNumber, err);
          throw err;
        });
      await faultPoint('after-accept-commit');
      return { receipt: await this.signed(outcome.receipt), fresh: outcome.fresh };
    } finally {
      // A no-op once committed; otherwise the staged bytes go: a refused or re-sent upload leaves no blob.
      await staged.abort();
    }
  }

  /** The header checks, before any payload byte is accepted (see receiveUpdate). */
  private checkHeader(
    study: StudyEntity,
    roundNumber: number,
    round: RoundEntity | null,
    length: number,
    h: UpdateHeader,
  ): void {
    if (h.studyId !== study.id || h.round !== roundNumber) {
      throw new HubException(
        HubErrorCode.WRONG_ROUND,
        `The update header names study ${h.studyId} round ${h.round}, not this URL's.`,
      );
    }
    if (h.length !== length) {
      throw new HubException(
        HubErrorCode.UPDATE_MALFORMED,
        `The update has ${h.length} values; the model has ${length}.`,
      );
    }
    // No open round: only an identical re-send of an accepted update can be answered, judged on its hash.
    if (!round) return;
    // An agent re-sends the release it already made (same frame) to a retried attempt of the same round on the same
    // model, rather than training and spending again: an earlier attempt's header is accepted.
    if (h.attempt > round.attempt) {
      throw new HubException(
        HubErrorCode.WRONG_ROUND,
        `Round ${round.number} is at attempt ${round.attempt}, not ${h.attempt}.`,
      );
    }
    if (h.planHash !== study.planHash) {
      throw new HubException(HubErrorCode.STALE_PLAN, 'The update was made for another plan version.');
    }
    if (h.baseModelHash !== round.modelHash) {
      throw new HubException(
        HubErrorCode.WRONG_MODEL,
        `The update was trained on model ${h.baseModelHash.slice(0, 12)}…; round ${round.number} published ${round.modelHash.slice(0, 12)}….`,
      );
    }
    // Before any payload byte is stored: only what the plan releases, and at least the plan's noise.
    const mechanism = this.ledger.mechanismOf(study.planHash, study.plan);
    const release = updateReleaseProblem(study.plan, mechanism, h);
    if (release) throw new HubException(HubErrorCode.UPDATE_MALFORMED, `The update header is refused: ${release}.`);
    checkPrivacyReport(mechanism !== null, mechanism, h.privacy, 'update');
  }

  /**
   * The acceptance transaction of a batch of one round's uploads (GroupCommit): the round's row lock once, then each
   * upload in arrival order. A refusal is decided on reads alone (the silo's row, the round's state), before that
   * upload writes anything, so the writes of the others (the staged bytes committed, the row, the privacy report,
   * the audit records) need no savepoint: the batch runs without one. Should an upload's writes fail all the same
   * (a statement error, a refused audit record), that transaction is lost and the batch runs again with a savepoint
   * per upload, so only that upload fails. Outcomes reach the callers after COMMIT; if the transaction fails as a
   * whole, every upload of the batch fails with its error.
   */
  private async storeBatch(
    roundId: string,
    members: PendingAcceptance[],
  ): Promise<MemberOutcome<{ receipt: UpdateReceipt; fresh: boolean }>[]> {
    try {
      return await this.runBatch(roundId, members, false);
    } catch (err) {
      if (!(err instanceof WriteFailed)) throw err;
      return this.runBatch(roundId, members, true);
    }
  }

  private runBatch(
    roundId: string,
    members: PendingAcceptance[],
    savepoints: boolean,
  ): Promise<MemberOutcome<{ receipt: UpdateReceipt; fresh: boolean }>[]> {
    return this.repository.inTransaction(async (tx) => {
      const locked = await tx.lockRound(roundId);
      // Read once under the round lock (every writer of these rows takes it first) and kept current below.
      const rows = new Map((await tx.participants(roundId)).map((p) => [p.siloId, p]));
      const outcomes: MemberOutcome<{ receipt: UpdateReceipt; fresh: boolean }>[] = [];
      for (const member of members) outcomes.push(await this.storeOne(tx, locked, rows, member, savepoints));
      return outcomes;
    });
  }

  /**
   * One upload inside the batch transaction: re-checks the round and the silo's row, commits the staged bytes,
   * writes the row, the privacy report and the audit records. They commit together or not at all.
   */
  private async storeOne(
    tx: RoundsUnitOfWork,
    round: RoundEntity,
    rows: Map<string, RoundParticipantEntity>,
    member: PendingAcceptance,
    savepoint: boolean,
  ): Promise<MemberOutcome<{ receipt: UpdateReceipt; fresh: boolean }>> {
    const { silo, received } = member;
    const participant = rows.get(silo.siloId);
    if (!participant) {
      const error = new HubException(HubErrorCode.NOT_A_PARTICIPANT, 'This silo does not take part in this round.');
      return { ok: false, error };
    }
    if (participant.status === 'uploaded' && participant.updateHash === received.frameSha256) {
      // Same content, same answer: the stored receipt again, nothing stored or recorded twice.
      const at = participant.reportedAt ?? new Date();
      return { ok: true, value: { receipt: this.receipt(silo, round, received.frameSha256, at), fresh: false } };
    }
    if (participant.status !== 'waiting') {
      const error = new HubException(
        HubErrorCode.DUPLICATE_UPDATE,
        `This silo already reported round ${round.number} (${participant.status}); a different update is refused.`,
      );
      return { ok: false, error };
    }
    try {
      assertOpen(round);
    } catch (error) {
      return { ok: false, error };
    }
    const write = () => this.writeUpload(tx, round, member);
    let written: MemberOutcome<WrittenUpload>;
    if (savepoint) {
      written = await tx.savepoint(write);
    } else {
      try {
        written = { ok: true, value: await write() };
      } catch (err) {
        throw new WriteFailed(err);
      }
    }
    if (!written.ok) return written;
    const { updateHash, reportedAt } = written.value;
    // The next uploads of this batch see this row as written (a re-send answered, a different update refused).
    rows.set(silo.siloId, { ...participant, status: 'uploaded', ...written.value });
    await faultPoint('before-accept-commit');
    return { ok: true, value: { receipt: this.receipt(silo, round, updateHash, reportedAt), fresh: true } };
  }

  /** An upload's writes, in the batch transaction: the staged bytes committed, the row, the report, the records. */
  private async writeUpload(
    tx: RoundsUnitOfWork,
    round: RoundEntity,
    member: PendingAcceptance,
  ): Promise<WrittenUpload> {
    const { silo, study, received, accepted } = member;
    const header = received.header;
    // Committed under the round lock and before the row that names it: a crash between the two leaves an
    // unreferenced blob, which the boot-time sweep removes (OrphanBlobSweepService).
    member.committed ??= member.staged.commit();
    const { hash, size } = await member.committed;
    const fields = {
      updateHash: hash,
      updateBytes: String(size),
      numExamples: header.numExamples,
      l2Norm: received.l2Norm,
      // Training loss never leaves the silo (issue 13); the column stays for older rows.
      trainLoss: null,
      evaluation: header.evaluation ? metricsOfEvaluation(header.evaluation) : null,
      privacy: header.privacy,
      reportedAt: new Date(),
    };
    await tx.recordUpload(round.id, silo.siloId, fields);
    const report = header.privacy
      ? await this.ledger.recordReport(
          tx.open,
          study,
          { number: round.number, attempt: round.attempt, kind: 'train' },
          silo.siloId,
          header.privacy,
        )
      : null;
    // The audit records last: the chain's advisory lock is then held only from here to COMMIT, and always after
    // the row locks (one lock order everywhere: no deadlock between concurrent uploads and closes).
    await this.audit.record({
      actor: { type: 'silo', id: silo.siloId, name: silo.name },
      action: 'round.update.accepted',
      subject: { studyId: study.id, siloId: silo.siloId },
      details: {
        round: round.number,
        attempt: round.attempt,
        headerAttempt: header.attempt,
        updateSha256: hash,
        bytes: size,
        numExamples: header.numExamples,
        l2Norm: received.l2Norm,
        // An earlier attempt's identical release re-sent to this attempt (the silo trained and spent once).
        ...(accepted.some((a) => a.updateHash === hash) ? { resentFromEarlierAttempt: true } : {}),
        // The release as the silo sent it (a noisy histogram stays raw here for auditors), and its privacy report.
        evaluation: header.evaluation,
        privacy: header.privacy,
      },
    });
    if (report && header.privacy) {
      await this.ledger.auditReport(
        { studyId: study.id, siloId: silo.siloId, siloName: silo.name, round: round.number },
        report,
        header.privacy,
      );
    }
    return fields;
  }

  private receiptOf(silo: SiloIdentity, studyId: string, a: AcceptedUpload): UpdateReceipt {
    return {
      studyId,
      siloId: silo.siloId,
      round: a.round,
      attempt: a.attempt,
      updateSha256: a.updateHash,
      receivedAt: a.reportedAt.toISOString(),
    };
  }

  private receipt(silo: SiloIdentity, round: RoundEntity, hash: string, at: Date): UpdateReceipt {
    return {
      studyId: round.studyId,
      siloId: silo.siloId,
      round: round.number,
      attempt: round.attempt,
      updateSha256: hash,
      receivedAt: at.toISOString(),
    };
  }

  /**
   * The receipt, signed with the hub's audit key (Ed25519, deterministic): the silo keeps it as proof that the hub
   * accepted exactly this update, and an auditor reconciles it with the hub's log. A repeated upload gets the same
   * bytes back, also after the round closed.
   */
  private async signed(receipt: UpdateReceipt): Promise<UpdateReceipt> {
    const key = await this.signingKeys.signingKey();
    const { signature: _none, ...payload } = receipt;
    return { ...payload, signature: signReceipt(payload, key.privateKey) };
  }
}
