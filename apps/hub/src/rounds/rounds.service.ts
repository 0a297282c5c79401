import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { aggregateRound, type SiloUpdate } from '@tessera/aggregation';
import {
  float32Bytes,
  metricsOfEvaluation,
  type EvaluationMetrics,
  type EvaluationReport,
  type FailureReport,
  type SiloTask,
  type UpdateReceipt,
} from '@tessera/protocol';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { DataSource, In, type EntityManager } from 'typeorm';
import { AuditCheckpointService } from '../audit/audit-checkpoint.service';
import { AuditTrail, SYSTEM_ACTOR } from '../audit/audit-trail';
import { PrivacyLedgerService, type PrivacyCharge } from '../privacy/privacy-ledger.service';
import { assertFaultInjectionAllowed, faultPoint } from '../faults/fault-point.util';
import { BlobStore } from '../blobs/blob-store';
import { BlobIntegrityError } from '../blobs/blob-store.exception';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { SiloIdentity } from '../silos/silo-identity';
import { StudyEntity } from '../studies/study.entity';
import { aggregatorFor, float32FromBytes, initialModel, payloadOfFrame, serverOptimizerFor } from './model-math';
import { RoundParticipantEntity } from './round-participant.entity';
import { RoundEntity, type RoundSummary } from './round.entity';
import { evaluationReportProblem } from './release-check.util';
import { assertOpen, checkPrivacyReport, lockRound, openRoundFor, recordRefusal } from './round-access.util';
import { UpdateAcceptanceService } from './update-acceptance.service';

/** An audit event of a round transition, recorded in the transaction that makes it. */
interface RoundEvent {
  action: string;
  studyId: string;
  siloId?: string;
  details: Record<string, unknown>;
}

/** How often open rounds are checked for deadlines and quorum (uploads also trigger a check at once). */
const TICK_MS = 500;
/** Long-poll granularity. */
const POLL_MS = 250;

function mean(values: number[]): number | null {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}

function weightedMean(pairs: [number, number][]): number | null {
  const w = pairs.reduce((a, [, n]) => a + n, 0);
  return w > 0 ? pairs.reduce((a, [v, n]) => a + v * n, 0) / w : null;
}

/**
 * Means over silos of their evaluations. Noisy evaluations (DP releases) carry no loss and noisy test sizes: their
 * loss means are null and their weights are the noisy n (post-processing of the release, no further cost).
 */
export function summarizeEvaluations(evals: EvaluationMetrics[]): RoundSummary['evaluation'] {
  const withLoss = evals.flatMap((e) => (e.loss === null ? [] : [{ loss: e.loss, n: e.n }]));
  return {
    accuracy: {
      unweighted: mean(evals.map((e) => e.accuracy)),
      weighted: weightedMean(evals.map((e) => [e.accuracy, e.n])),
    },
    loss: {
      unweighted: mean(withLoss.map((e) => e.loss)),
      weighted: weightedMean(withLoss.map((e) => [e.loss, e.n])),
    },
    auc: { unweighted: mean(evals.flatMap((e) => (e.auc === null ? [] : [e.auc]))) },
    noisy: evals.some((e) => e.noisy === true),
  };
}

/**
 * Durable rounds. Every state lives in PostgreSQL and every transition happens in a transaction holding the
 * round's row lock and re-checking its status, so a restarted hub resumes where it stopped and two hub processes
 * never both close a round.
 */
@Injectable()
export class RoundsService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(RoundsService.name);
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private wakeRequested = false;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly blobs: BlobStore,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
    private readonly checkpoints: AuditCheckpointService,
    private readonly ledger: PrivacyLedgerService,
    private readonly acceptance: UpdateAcceptanceService,
  ) {}

  onModuleInit(): void {
    assertFaultInjectionAllowed();
    this.timer = setInterval(() => this.wake(), TICK_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Checks open rounds now (after an upload, a start); coalesces concurrent requests. */
  wake(): void {
    if (this.ticking) {
      this.wakeRequested = true;
      return;
    }
    this.ticking = true;
    void this.tick()
      .catch((err: unknown) => this.logger.error(`round check failed: ${(err as Error).message}`))
      .finally(() => {
        this.ticking = false;
        if (this.wakeRequested && this.timer) {
          this.wakeRequested = false;
          this.wake();
        }
      });
  }

  /**
   * Round 1 of a study that just started (inside the start transaction). Returns the privacy charges of the tasks
   * it issued: the caller records them (auditCharges) in that same transaction.
   */
  async openFirstRound(tx: EntityManager, study: StudyEntity): Promise<PrivacyCharge[]> {
    const model = await initialModel(study.plan);
    const modelHash = await this.blobs.put(float32Bytes(model));
    await tx.getRepository(StudyEntity).update(study.id, { currentModelHash: modelHash, optimizerStateHash: null });
    return this.openRound(tx, study, 1, 1, 'train', modelHash, study.participants);
  }

  /** Audit records of privacy charges made when tasks were issued; call inside the transaction that made them. */
  async auditCharges(studyId: string, charges: PrivacyCharge[]): Promise<void> {
    await this.ledger.auditCharges(studyId, charges);
  }

  async abandonOpenRounds(tx: EntityManager, studyId: string): Promise<void> {
    await tx
      .getRepository(RoundEntity)
      .update({ studyId, status: 'open' }, { status: 'abandoned', closedAt: new Date(), closeReason: 'study stopped' });
  }

  /** Long poll: the tasks waiting for this silo, returned as soon as there is one or after `waitMs`. */
  async tasksFor(siloId: string, waitMs: number): Promise<SiloTask[]> {
    const until = Date.now() + waitMs;
    for (;;) {
      const tasks = await this.pendingTasks(siloId);
      if (tasks.length > 0 || Date.now() >= until || !this.timer) return tasks;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  private async pendingTasks(siloId: string): Promise<SiloTask[]> {
    const rows = (await this.db.query(
      `SELECT r.study_id, r.number, r.attempt, r.kind, r.model_hash, r.deadline_at, s.plan_version, s.plan_hash
         FROM round_participants p
         JOIN rounds r ON r.id = p.round_id
         JOIN studies s ON s.id = r.study_id
        WHERE p.silo_id = $1 AND p.status = 'waiting' AND r.status = 'open' AND s.status = 'running'
        ORDER BY r.opened_at`,
      [siloId],
    )) as {
      study_id: string;
      number: number;
      attempt: number;
      kind: 'train' | 'evaluate';
      model_hash: string;
      deadline_at: Date;
      plan_version: number;
      plan_hash: string;
    }[];
    return rows.map((r) => ({
      studyId: r.study_id,
      planVersion: r.plan_version,
      planHash: r.plan_hash,
      kind: r.kind,
      round: r.number,
      attempt: r.attempt,
      modelHash: r.model_hash,
      deadlineAt: new Date(r.deadline_at).toISOString(),
      // The time left by the hub's clock: the silo judges the deadline from its receipt time, whatever its clock.
      deadlineInMs: Math.max(0, new Date(r.deadline_at).getTime() - Date.now()),
    }));
  }

  /** A silo may download a model only if it is one published to it. */
  async modelForSilo(siloId: string, hash: string): Promise<Readable> {
    const [row] = (await this.db.query(
      `SELECT 1 FROM rounds r JOIN round_participants p ON p.round_id = r.id
        WHERE p.silo_id = $1 AND r.model_hash = $2 LIMIT 1`,
      [siloId, hash],
    )) as unknown[];
    if (!row || !(await this.blobs.has(hash))) {
      throw new HubException(HubErrorCode.NOT_FOUND, `No model ${hash} was published to this silo.`);
    }
    // Checked against its name before a byte is sent: a corrupted model fails here with 500, never goes out as 200.
    return this.blobs.openVerifiedRead(hash);
  }

  /**
   * Validates and stores a streamed update (UpdateAcceptanceService): nothing is stored when it is refused, and a
   * re-send of an accepted update gets its original receipt, also after the round closed.
   */
  async acceptUpdate(silo: SiloIdentity, studyId: string, roundNumber: number, body: Readable): Promise<UpdateReceipt> {
    const { receipt, fresh } = await this.acceptance.accept(silo, studyId, roundNumber, body);
    if (fresh) this.wake();
    return receipt;
  }

  async acceptEvaluation(
    silo: SiloIdentity,
    studyId: string,
    roundNumber: number,
    report: EvaluationReport,
  ): Promise<{ accepted: true }> {
    const { study, round } = await openRoundFor(this.db, silo, studyId, roundNumber);
    const mechanism = this.ledger.mechanismOf(study.planHash, study.plan);
    try {
      // An earlier attempt's report is the same release re-sent to a retried attempt on the same model.
      if (report.attempt > round.attempt || report.round !== roundNumber) {
        throw new HubException(HubErrorCode.WRONG_ROUND, `Round ${roundNumber} is at attempt ${round.attempt}.`);
      }
      if (report.planHash !== study.planHash)
        throw new HubException(HubErrorCode.STALE_PLAN, 'The report names another plan version.');
      if (report.modelHash !== round.modelHash)
        throw new HubException(HubErrorCode.WRONG_MODEL, 'The report evaluates another model.');
      if (round.kind !== 'evaluate') {
        throw new HubException(
          HubErrorCode.WRONG_ROUND,
          `Round ${roundNumber} trains: upload an update (it carries the evaluation).`,
        );
      }
      const problem = evaluationReportProblem(study.plan, mechanism, report.evaluation);
      if (problem)
        throw new HubException(HubErrorCode.VALIDATION_FAILED, `The evaluation report is refused: ${problem}.`);
      // Only a noisy evaluation spends privacy; its report must say what it spent.
      checkPrivacyReport(
        mechanism !== null && mechanism.evaluation !== null,
        mechanism,
        report.privacy,
        'evaluation report',
      );
      await this.db.transaction(async (tx) => {
        const locked = await lockRound(tx, round.id);
        assertOpen(locked);
        const p = await tx
          .getRepository(RoundParticipantEntity)
          .findOne({ where: { roundId: round.id, siloId: silo.siloId } });
        if (!p) throw new HubException(HubErrorCode.NOT_A_PARTICIPANT, 'This silo does not take part in this round.');
        if (p.status !== 'waiting')
          throw new HubException(HubErrorCode.DUPLICATE_UPDATE, 'This silo already reported this round.');
        const metrics = report.evaluation ? metricsOfEvaluation(report.evaluation) : null;
        await tx
          .getRepository(RoundParticipantEntity)
          .update(
            { roundId: round.id, siloId: silo.siloId },
            { status: 'evaluated', evaluation: metrics, privacy: report.privacy, reportedAt: new Date() },
          );
        const privacy = report.privacy
          ? await this.ledger.recordReport(
              tx,
              study,
              { number: roundNumber, attempt: round.attempt, kind: 'evaluate' },
              silo.siloId,
              report.privacy,
            )
          : null;
        // In the same transaction as the row (the record joins it): recorded exactly when it is stored.
        await this.audit.record({
          actor: { type: 'silo', id: silo.siloId, name: silo.name },
          action: 'round.evaluation.reported',
          subject: { studyId, siloId: silo.siloId },
          details: {
            round: roundNumber,
            attempt: locked.attempt,
            modelHash: report.modelHash,
            // What the hub shows, and the release itself (a noisy histogram stays raw for auditors).
            evaluation: metrics,
            released: report.evaluation,
            privacy: report.privacy,
          },
        });
        if (privacy && report.privacy) {
          await this.ledger.auditReport(
            { studyId, siloId: silo.siloId, siloName: silo.name, round: roundNumber },
            privacy,
            report.privacy,
          );
        }
      });
    } catch (err) {
      await recordRefusal(this.audit, silo, studyId, roundNumber, err, 'round.evaluation.refused');
      throw err;
    }
    this.wake();
    return { accepted: true };
  }

  /** A silo cannot do its task (its data lacks a column, its privacy cap is reached, …). */
  async acceptFailure(
    silo: SiloIdentity,
    studyId: string,
    roundNumber: number,
    report: FailureReport,
  ): Promise<{ accepted: true }> {
    const { study, round } = await openRoundFor(this.db, silo, studyId, roundNumber);
    const failedStudy = await this.db.transaction(async (tx) => {
      const locked = await lockRound(tx, round.id);
      assertOpen(locked);
      await tx
        .getRepository(RoundParticipantEntity)
        .update(
          { roundId: round.id, siloId: silo.siloId, status: 'waiting' },
          { status: 'failed', failure: { code: report.code, message: report.message }, reportedAt: new Date() },
        );
      const remaining = study.participants.filter((s) => s !== silo.siloId);
      let failedStudy: string | null = null;
      if (study.plan.participation.onSiloFailure === 'fail-study') {
        failedStudy = `silo ${silo.name} could not take part: ${report.message}`;
        await this.failStudy(tx, study, locked, failedStudy);
      } else {
        await tx.getRepository(StudyEntity).update(study.id, { participants: remaining });
      }
      await this.audit.record({
        actor: { type: 'silo', id: silo.siloId, name: silo.name },
        action: 'round.silo.failed',
        subject: { studyId, siloId: silo.siloId },
        details: { round: roundNumber, attempt: locked.attempt, code: report.code, message: report.message },
      });
      if (failedStudy !== null) {
        await this.audit.record({
          actor: SYSTEM_ACTOR,
          action: 'study.failed',
          subject: { studyId },
          details: { reason: failedStudy, round: roundNumber },
        });
      }
      return failedStudy;
    });
    // A failed study's end is sealed by a signed checkpoint, as when a round's close fails it.
    if (failedStudy !== null) await this.checkpoints.checkpointNow();
    this.wake();
    return { accepted: true };
  }

  /** Closes what is due: rounds every participant reported, and rounds past their deadline. */
  async tick(now = new Date()): Promise<void> {
    const due = (await this.db.query(
      `SELECT r.id FROM rounds r
        WHERE r.status = 'open'
          AND (r.deadline_at <= $1
               OR NOT EXISTS (SELECT 1 FROM round_participants p WHERE p.round_id = r.id AND p.status = 'waiting'))
        ORDER BY r.opened_at`,
      [now],
    )) as { id: string }[];
    for (const { id } of due) await this.closeRound(id, now);
  }

  /**
   * Closes one round if it is still open and due; the row lock makes this safe across hub processes. The round's
   * close, the next round's opening, the privacy charges of its tasks and their audit records commit in one
   * transaction: a crash leaves either all of them or none.
   */
  async closeRound(roundId: string, now = new Date()): Promise<void> {
    const events: RoundEvent[] = [];
    const charges: { studyId: string; charges: PrivacyCharge[] }[] = [];
    await this.db.transaction(async (tx) => {
      await this.closeUnderLock(tx, roundId, now, events, charges);
      // The records last, after every row lock (one lock order: the chain's advisory lock is always taken last).
      for (const e of events) {
        await this.audit.record({
          actor: SYSTEM_ACTOR,
          action: e.action,
          subject: { studyId: e.studyId, ...(e.siloId ? { siloId: e.siloId } : {}) },
          details: e.details,
        });
      }
      for (const c of charges) await this.ledger.auditCharges(c.studyId, c.charges);
      if (events.length > 0) await faultPoint('before-close-commit');
    });
    if (events.length > 0) await faultPoint('after-close-commit');
    // Each study's end is sealed by a signed checkpoint of the audit chain.
    if (events.some((e) => e.action === 'study.completed' || e.action === 'study.failed')) {
      await this.checkpoints.checkpointNow();
    }
  }

  /** The decision and state changes of closeRound, under the round's and the study's row locks. */
  private async closeUnderLock(
    tx: EntityManager,
    roundId: string,
    now: Date,
    events: RoundEvent[],
    charges: { studyId: string; charges: PrivacyCharge[] }[],
  ): Promise<void> {
    const round = await lockRound(tx, roundId);
    if (round.status !== 'open') return;
    const study = await tx
      .getRepository(StudyEntity)
      .findOneOrFail({ where: { id: round.studyId }, lock: { mode: 'pessimistic_write' } });
    const participants = await tx.getRepository(RoundParticipantEntity).find({ where: { roundId } });
    const waiting = participants.filter((p) => p.status === 'waiting');
    if (waiting.length > 0 && round.deadlineAt.getTime() > now.getTime()) return; // not due after all
    // An accepted update whose stored bytes no longer match their name is never aggregated: that silo's report of
    // this round is set aside as failed, with the exact cause, and the round proceeds (or retries) without it.
    for (const p of participants) {
      if (p.status !== 'uploaded' || !p.updateHash) continue;
      const problem = await this.storedUpdateProblem(p.updateHash);
      if (problem === null) continue;
      const failure = { code: 'UPDATE_CORRUPTED', message: `the stored update ${p.updateHash} ${problem}` };
      await tx
        .getRepository(RoundParticipantEntity)
        .update(
          { roundId, siloId: p.siloId },
          { status: 'failed', failure: failure as RoundParticipantEntity['failure'] },
        );
      p.status = 'failed';
      this.logger.error(`round ${round.number} attempt ${round.attempt}: ${failure.message}; not aggregated`);
      events.push({
        action: 'round.silo.failed',
        studyId: study.id,
        siloId: p.siloId,
        details: { round: round.number, attempt: round.attempt, ...failure },
      });
    }
    const reported = participants.filter((p) => p.status === 'uploaded' || p.status === 'evaluated');
    const plan = study.plan.participation;
    const active = study.participants.length;
    const summary: RoundSummary = {
      reported: reported.length,
      participants: participants.length,
      // Only plans that release the record counts have them (release.trainingExamples 'exact').
      totalExamples:
        study.plan.release.trainingExamples === 'exact' && round.kind === 'train'
          ? reported.reduce((a, p) => a + (p.numExamples ?? 0), 0)
          : null,
      evaluation: summarizeEvaluations(reported.flatMap((p) => (p.evaluation ? [p.evaluation] : []))),
    };
    if (waiting.length > 0) {
      await tx
        .getRepository(RoundParticipantEntity)
        .update({ roundId, siloId: In(waiting.map((p) => p.siloId)), status: 'waiting' }, { status: 'late' });
    }
    if (round.kind === 'evaluate' && participants.length === 0) {
      // No participant could release an evaluation within the approved plan (openRound left them out).
      const reason = 'no silo could evaluate the final model within the approved privacy plan';
      await tx
        .getRepository(RoundEntity)
        .update(roundId, { status: 'closed', closedAt: now, closeReason: reason, summary });
      await tx.getRepository(StudyEntity).update(study.id, {
        status: 'completed',
        endedAt: now,
        endReason: study.endReason ?? `completed ${study.plan.training.rounds} rounds; ${reason}`,
      });
      events.push({
        action: 'round.closed',
        studyId: study.id,
        details: { round: round.number, kind: 'evaluate', summary },
      });
      events.push({
        action: 'study.completed',
        studyId: study.id,
        details: { finalModelHash: round.modelHash, evaluation: null },
      });
      return;
    }
    const needed = round.kind === 'evaluate' ? 1 : plan.minSilosPerRound;
    if (active < plan.minSilosPerRound && round.kind === 'train') {
      await this.failStudy(
        tx,
        study,
        round,
        `only ${active} silos remain in the study; the plan needs at least ${plan.minSilosPerRound}`,
      );
      events.push({
        action: 'study.failed',
        studyId: study.id,
        details: { reason: 'too few silos remain', round: round.number },
      });
      return;
    }
    if (reported.length < needed) {
      const why = `round ${round.number} attempt ${round.attempt}: ${reported.length} of ${participants.length} silos reported before the deadline (minimum ${needed})`;
      const blocked = round.kind === 'train' ? await this.budgetBlocks(tx, study, round.number) : null;
      if (blocked) {
        // Silos that uploaded in the failed attempt spent privacy: a retry may no longer fit the budget.
        await tx
          .getRepository(RoundEntity)
          .update(roundId, { status: 'retried', closedAt: now, closeReason: why, summary });
        await tx.getRepository(StudyEntity).update(study.id, { endReason: blocked });
        charges.push({
          studyId: study.id,
          charges: await this.openRound(
            tx,
            study,
            round.number,
            round.attempt + 1,
            'evaluate',
            round.modelHash,
            study.participants,
          ),
        });
        events.push({
          action: 'privacy.budget.reached',
          studyId: study.id,
          details: { round: round.number, reason: blocked },
        });
      } else if (round.attempt <= plan.maxRoundRetries) {
        await tx
          .getRepository(RoundEntity)
          .update(roundId, { status: 'retried', closedAt: now, closeReason: why, summary });
        charges.push({
          studyId: study.id,
          charges: await this.openRound(
            tx,
            study,
            round.number,
            round.attempt + 1,
            round.kind,
            round.modelHash,
            study.participants,
          ),
        });
        events.push({
          action: 'round.retried',
          studyId: study.id,
          details: { round: round.number, attempt: round.attempt, reason: why },
        });
      } else {
        await this.failStudy(tx, study, round, `${why}; no retries left`);
        events.push({ action: 'study.failed', studyId: study.id, details: { reason: why } });
      }
      return;
    }
    if (round.kind === 'evaluate') {
      await tx
        .getRepository(RoundEntity)
        .update(roundId, { status: 'closed', closedAt: now, closeReason: 'final evaluation complete', summary });
      await tx.getRepository(StudyEntity).update(study.id, {
        status: 'completed',
        endedAt: now,
        endReason: study.endReason ?? `completed ${study.plan.training.rounds} rounds`,
      });
      events.push({
        action: 'round.closed',
        studyId: study.id,
        details: { round: round.number, kind: 'evaluate', summary },
      });
      events.push({
        action: 'study.completed',
        studyId: study.id,
        details: { finalModelHash: round.modelHash, evaluation: summary.evaluation },
      });
      return;
    }
    const { weights, stateHash, trace } = await this.aggregate(study, round, reported, participants.length);
    const resultHash = await this.blobs.put(float32Bytes(weights));
    summary.aggregationTrace = trace;
    await tx.getRepository(RoundEntity).update(roundId, {
      status: 'closed',
      closedAt: now,
      closeReason: waiting.length ? `deadline: ${waiting.length} silo(s) late` : 'all silos reported',
      resultModelHash: resultHash,
      summary,
    });
    await tx
      .getRepository(StudyEntity)
      .update(study.id, { currentModelHash: resultHash, optimizerStateHash: stateHash });
    events.push({
      action: 'round.closed',
      studyId: study.id,
      details: {
        round: round.number,
        attempt: round.attempt,
        modelHash: resultHash,
        reported: reported.length,
        late: waiting.length,
      },
    });
    const next = round.number + 1;
    let kind: 'train' | 'evaluate' = next > study.plan.training.rounds ? 'evaluate' : 'train';
    if (kind === 'train') {
      const blocked = await this.budgetBlocks(tx, study, next);
      if (blocked) {
        // No round may take a participant past the study's target: evaluate the model so far and complete.
        kind = 'evaluate';
        await tx.getRepository(StudyEntity).update(study.id, { endReason: blocked });
        events.push({
          action: 'privacy.budget.reached',
          studyId: study.id,
          details: { afterRound: round.number, reason: blocked },
        });
      }
    }
    charges.push({
      studyId: study.id,
      charges: await this.openRound(tx, study, next, 1, kind, resultHash, study.participants),
    });
    events.push({ action: 'round.opened', studyId: study.id, details: { round: next, kind, modelHash: resultHash } });
  }

  /**
   * Why a stored update cannot be aggregated (missing, unreadable, or bytes that no longer hash to its name), or null.
   * Checked here whatever the blob store checks on read, so bad bytes are never averaged into the model.
   */
  private async storedUpdateProblem(hash: string): Promise<string | null> {
    let bytes: Buffer;
    try {
      bytes = await this.blobs.get(hash);
    } catch (err) {
      // The blob store checks reads against the name too (BlobIntegrityError names the hash the bytes now have).
      if (err instanceof BlobIntegrityError) return `is corrupted on disk (its bytes hash to ${err.actualHash})`;
      return `cannot be read (${(err as Error).message})`;
    }
    const actual = createHash('sha256').update(bytes).digest('hex');
    return actual === hash ? null : `is corrupted on disk (its bytes hash to ${actual})`;
  }

  /** Streams the reported updates from the blob store through the aggregator, then steps the server optimizer. */
  private async aggregate(
    study: StudyEntity,
    round: RoundEntity,
    reported: RoundParticipantEntity[],
    participants: number,
  ): Promise<{ weights: Float32Array; stateHash: string; trace: object[] }> {
    const global = float32FromBytes(await this.blobs.get(round.modelHash));
    const optimizer = serverOptimizerFor(study.plan, global.length);
    if (study.optimizerStateHash) optimizer.restoreState(await this.blobs.get(study.optimizerStateHash));
    const blobs = this.blobs;
    async function* updates(): AsyncGenerator<SiloUpdate> {
      for (const p of reported) {
        if (!p.updateHash) continue;
        // The weight counts only when the plan releases record counts (aggregatorFor then weights); else 1 each.
        yield { update: payloadOfFrame(await blobs.get(p.updateHash)), weight: p.numExamples ?? 1, siloId: p.siloId };
      }
    }
    const mechanism = this.ledger.mechanismOf(study.planHash, study.plan);
    const aggregator = aggregatorFor(study.plan, global.length, mechanism, participants);
    const outcome = await aggregateRound(global, updates(), aggregator, optimizer);
    const stateHash = await this.blobs.put(optimizer.serializeState());
    return { weights: outcome.weights, stateHash, trace: outcome.trace.map((t) => ({ ...t })) };
  }

  /**
   * Why training round `number` may not open, or null: issuing it would take a participant past the approved plan
   * (more rounds than planned, or a charged ε above the target), counting for each silo the larger of the hub's
   * charges and the silo's own reports.
   */
  private async budgetBlocks(tx: EntityManager, study: StudyEntity, number: number): Promise<string | null> {
    const mechanism = this.ledger.mechanismOf(study.planHash, study.plan);
    if (!mechanism) return null;
    const over = await this.ledger.planLimits(tx, study, { number, kind: 'train' }, study.participants);
    if (!over.length) return null;
    return `privacy budget reached: training round ${number} would break the approved plan for ${over.length} silo(s): ${over[0]!.reason} (δ = ${mechanism.delta})`;
  }

  /**
   * Opens a round attempt and issues its tasks; charges each participant's privacy ledger as the task is issued
   * (the silo spends when it does the task, whether or not its upload ever arrives). An evaluation that would break
   * a silo's approved plan is not asked of it (its agent would refuse it anyway). Returns the new charges.
   */
  private async openRound(
    tx: EntityManager,
    study: StudyEntity,
    number: number,
    attempt: number,
    kind: 'train' | 'evaluate',
    modelHash: string,
    invited: string[],
  ): Promise<PrivacyCharge[]> {
    let participants = invited;
    if (kind === 'evaluate') {
      const refused = await this.ledger.planLimits(tx, study, { number, kind }, invited);
      participants = invited.filter((s) => !refused.some((r) => r.siloId === s));
    }
    const now = new Date();
    const round = await tx.getRepository(RoundEntity).save(
      tx.getRepository(RoundEntity).create({
        studyId: study.id,
        number,
        attempt,
        kind,
        status: 'open',
        modelHash,
        openedAt: now,
        deadlineAt: new Date(now.getTime() + study.plan.participation.roundDeadlineSeconds * 1000),
      }),
    );
    if (participants.length) {
      await tx
        .getRepository(RoundParticipantEntity)
        .insert(participants.map((siloId) => ({ roundId: round.id, siloId, status: 'waiting' as const })));
    }
    return this.ledger.chargeIssued(tx, study, { number, attempt, kind }, participants);
  }

  private async failStudy(tx: EntityManager, study: StudyEntity, round: RoundEntity, reason: string): Promise<void> {
    await tx
      .getRepository(RoundEntity)
      .update({ id: round.id, status: 'open' }, { status: 'failed', closedAt: new Date(), closeReason: reason });
    await tx.getRepository(StudyEntity).update(study.id, { status: 'failed', endReason: reason, endedAt: new Date() });
  }
}
