import { Injectable } from '@nestjs/common';
import { float32Bytes } from '@tessera/protocol';
import { BlobStore } from '../blobs/blob-store';
import { PrivacyLedgerService, type PrivacyCharge } from '../privacy/privacy-ledger.service';
import { SecAggSessionsService } from '../secagg/secagg-sessions.service';
import type { StudyEntity } from '../study-state/study.entity';
import { initialModel, parameterCount } from './model-math';
import { RoundsRepository, type OpenTransaction } from './rounds.repository';

/** Opens round attempts and issues their tasks, always inside the caller's transaction. */
@Injectable()
export class RoundOpener {
  constructor(
    private readonly repository: RoundsRepository,
    private readonly blobs: BlobStore,
    private readonly ledger: PrivacyLedgerService,
    private readonly secureAggregation: SecAggSessionsService,
  ) {}

  /**
   * Round 1 of a study that just started (inside the start transaction). Returns the privacy charges of the tasks
   * it issued: the caller records them (ledger.auditCharges) in that same transaction.
   */
  async openFirstRound(tx: OpenTransaction, study: StudyEntity): Promise<PrivacyCharge[]> {
    const model = initialModel(study.plan);
    const modelHash = await this.blobs.put(float32Bytes(model));
    await this.repository.within(tx).updateStudy(study.id, {
      currentModelHash: modelHash,
      optimizerStateHash: null,
      controlVariateHash: null,
    });
    return this.open(tx, study, { number: 1, attempt: 1, kind: 'train', modelHash });
  }

  /**
   * Opens a round attempt and issues its tasks; charges each participant's privacy ledger as the task is issued
   * (the silo spends when it does the task, whether or not its upload ever arrives). An evaluation that would break
   * a silo's approved plan is not asked of it (its agent would refuse it anyway). Returns the new charges.
   */
  async open(
    tx: OpenTransaction,
    study: StudyEntity,
    attempt: { number: number; attempt: number; kind: 'train' | 'evaluate'; modelHash: string },
  ): Promise<PrivacyCharge[]> {
    const { number, kind } = attempt;
    let participants = study.participants;
    if (kind === 'evaluate') {
      const refused = await this.ledger.planLimits(tx, study, { number, kind }, participants);
      participants = participants.filter((s) => !refused.some((r) => r.siloId === s));
    }
    const now = new Date();
    const rounds = this.repository.within(tx);
    const round = await rounds.insertRound({
      studyId: study.id,
      number,
      attempt: attempt.attempt,
      kind,
      status: 'open',
      modelHash: attempt.modelHash,
      openedAt: now,
      deadlineAt: new Date(now.getTime() + study.plan.participation.roundDeadlineSeconds * 1000),
    });
    if (participants.length) await rounds.addParticipants(round.id, participants);
    const secure = study.plan.secureAggregation;
    if (secure && kind === 'train') {
      // The round's updates arrive masked and are only ever summed (apps/hub/src/secagg); the plan check keeps the
      // roster able to meet the threshold (minSilosPerRound ≥ t + 1 ≤ participants).
      // With distributed noise the silos add it; the scale leaves room for it (z: the accounted noise multiplier).
      const p = study.plan.privacy;
      const z =
        p.mode === 'dp-fedavg' && p.noise === 'distributed'
          ? (this.ledger.mechanismOf(study.planHash, study.plan)?.noiseMultiplier ?? null)
          : null;
      await this.secureAggregation.open(tx, round, secure, participants, parameterCount(study.plan), z);
    }
    return this.ledger.chargeIssued(tx, study, { number, attempt: attempt.attempt, kind }, participants);
  }

  /**
   * Ends the study's open (or closing) rounds when the study is stopped. A hub aggregating one of them finds its
   * claim gone at commit and discards its result.
   */
  async abandonOpenRounds(tx: OpenTransaction, studyId: string): Promise<void> {
    await this.repository.within(tx).abandonOpenRounds(studyId);
  }
}
