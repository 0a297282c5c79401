import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { aggregateRound, type SiloUpdate } from '@tessera/aggregation';
import {
  float32Bytes,
  type EvaluationMetrics,
  type EvaluationReport,
  type FailureReport,
  type SiloTask,
  type UpdateReceipt,
} from '@tessera/protocol';
import type { Readable } from 'node:stream';
import { DataSource, In, type EntityManager } from 'typeorm';
import { signReceipt } from '@tessera/audit';
import { AuditCheckpointService } from '../audit/audit-checkpoint.service';
import { AuditSigningKeyService } from '../audit/audit-signing-key.service';
import { AuditTrail, SYSTEM_ACTOR } from '../audit/audit-trail';
import { PrivacyLedgerService } from '../privacy/privacy-ledger.service';
import { BlobStore } from '../blobs/blob-store';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { SiloIdentity } from '../silos/silo-identity';
import { StudyEntity } from '../studies/study.entity';
import {
  aggregatorFor,
  float32FromBytes,
  initialModel,
  parameterCount,
  payloadOfFrame,
  serverOptimizerFor,
} from './model-math';
import { RoundParticipantEntity } from './round-participant.entity';
import { RoundEntity, type RoundSummary } from './round.entity';
import { receiveUpdate } from './update-receiver';

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

export function summarizeEvaluations(evals: EvaluationMetrics[]): RoundSummary['evaluation'] {
  return {
    accuracy: {
      unweighted: mean(evals.map((e) => e.accuracy)),
      weighted: weightedMean(evals.map((e) => [e.accuracy, e.n])),
    },
    loss: { unweighted: mean(evals.map((e) => e.loss)), weighted: weightedMean(evals.map((e) => [e.loss, e.n])) },
    auc: { unweighted: mean(evals.flatMap((e) => (e.auc === null ? [] : [e.auc]))) },
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
    private readonly signingKeys: AuditSigningKeyService,
    private readonly checkpoints: AuditCheckpointService,
    private readonly ledger: PrivacyLedgerService,
  ) {}

  onModuleInit(): void {
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

  /** Round 1 of a study that just started (inside the start transaction). */
  async openFirstRound(tx: EntityManager, study: StudyEntity): Promise<void> {
    const model = await initialModel(study.plan);
    const modelHash = await this.blobs.put(float32Bytes(model));
    await tx.getRepository(StudyEntity).update(study.id, { currentModelHash: modelHash, optimizerStateHash: null });
    await this.openRound(tx, study, 1, 1, 'train', modelHash, study.participants);
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
    return this.blobs.openRead(hash);
  }

  /** Validates and stores a streamed update; nothing is stored when it is refused. */
  async acceptUpdate(silo: SiloIdentity, studyId: string, roundNumber: number, body: Readable): Promise<UpdateReceipt> {
    const { study, round } = await this.openRoundFor(silo, studyId, roundNumber);
    if (round.kind !== 'train') {
      body.resume();
      throw new HubException(
        HubErrorCode.WRONG_ROUND,
        `Round ${roundNumber} only evaluates: post an evaluation report, not an update.`,
      );
    }
    const length = await parameterCount(study.plan);
    const staged = await this.blobs.stage();
    let received;
    try {
      received = await receiveUpdate(body, staged, (h) => {
        if (h.studyId !== studyId || h.round !== roundNumber) {
          throw new HubException(
            HubErrorCode.WRONG_ROUND,
            `The update header names study ${h.studyId} round ${h.round}, not this URL's.`,
          );
        }
        if (h.attempt !== round.attempt) {
          throw new HubException(
            HubErrorCode.WRONG_ROUND,
            `Round ${roundNumber} is at attempt ${round.attempt}, not ${h.attempt}.`,
          );
        }
        if (h.planHash !== study.planHash) {
          throw new HubException(HubErrorCode.STALE_PLAN, 'The update was made for another plan version.');
        }
        if (h.baseModelHash !== round.modelHash) {
          throw new HubException(
            HubErrorCode.WRONG_MODEL,
            `The update was trained on model ${h.baseModelHash.slice(0, 12)}…; round ${roundNumber} published ${round.modelHash.slice(0, 12)}….`,
          );
        }
        if (h.length !== length) {
          throw new HubException(
            HubErrorCode.UPDATE_MALFORMED,
            `The update has ${h.length} values; the model has ${length}.`,
          );
        }
      });
    } catch (err) {
      await this.recordRefusal(silo, studyId, roundNumber, err);
      throw err;
    }
    const { hash, size } = await staged.commit();
    const outcome = await this.db
      .transaction(async (tx) => {
        const locked = await this.lockRound(tx, round.id);
        const participant = await tx
          .getRepository(RoundParticipantEntity)
          .findOne({ where: { roundId: round.id, siloId: silo.siloId } });
        if (!participant)
          throw new HubException(HubErrorCode.NOT_A_PARTICIPANT, 'This silo does not take part in this round.');
        if (participant.status === 'uploaded' && participant.updateHash === hash) {
          // Same content, same answer: the stored receipt again, nothing recorded twice.
          return {
            receipt: this.receipt(silo, locked, hash, participant.reportedAt ?? new Date()),
            fresh: false,
            spend: null,
          };
        }
        if (participant.status !== 'waiting') {
          throw new HubException(
            HubErrorCode.DUPLICATE_UPDATE,
            `This silo already reported round ${roundNumber} (${participant.status}); a different update is refused.`,
          );
        }
        this.assertOpen(locked);
        const now = new Date();
        await tx.getRepository(RoundParticipantEntity).update(
          { roundId: round.id, siloId: silo.siloId },
          {
            status: 'uploaded',
            updateHash: hash,
            updateBytes: String(size),
            numExamples: received.header.numExamples,
            l2Norm: received.l2Norm,
            trainLoss: received.header.trainLoss,
            evaluation: received.header.evaluation,
            privacy: received.header.privacy,
            reportedAt: now,
          },
        );
        const spend = await this.ledger.recordSpend(tx, {
          studyId,
          siloId: silo.siloId,
          round: roundNumber,
          attempt: round.attempt,
          planHash: study.planHash,
          plan: study.plan,
          reported: received.header.privacy,
        });
        return { receipt: this.receipt(silo, locked, hash, now), fresh: true, spend };
      })
      .catch(async (err: unknown) => {
        await this.recordRefusal(silo, studyId, roundNumber, err);
        throw err;
      });
    if (!outcome.fresh) return this.signed(outcome.receipt);
    await this.audit.record({
      actor: { type: 'silo', id: silo.siloId, name: silo.name },
      action: 'round.update.accepted',
      subject: { studyId, siloId: silo.siloId },
      details: {
        round: roundNumber,
        attempt: round.attempt,
        updateSha256: hash,
        bytes: size,
        numExamples: received.header.numExamples,
        l2Norm: received.l2Norm,
      },
    });
    if (outcome.spend) {
      await this.ledger.auditSpend(
        { studyId, siloId: silo.siloId, siloName: silo.name, round: roundNumber },
        outcome.spend,
        received.header.privacy,
      );
    }
    this.wake();
    return this.signed(outcome.receipt);
  }

  async acceptEvaluation(
    silo: SiloIdentity,
    studyId: string,
    roundNumber: number,
    report: EvaluationReport,
  ): Promise<{ accepted: true }> {
    const { study, round } = await this.openRoundFor(silo, studyId, roundNumber);
    if (report.attempt !== round.attempt || report.round !== roundNumber) {
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
    await this.db.transaction(async (tx) => {
      const locked = await this.lockRound(tx, round.id);
      this.assertOpen(locked);
      const p = await tx
        .getRepository(RoundParticipantEntity)
        .findOneOrFail({ where: { roundId: round.id, siloId: silo.siloId } });
      if (p.status !== 'waiting')
        throw new HubException(HubErrorCode.DUPLICATE_UPDATE, 'This silo already reported this round.');
      await tx
        .getRepository(RoundParticipantEntity)
        .update(
          { roundId: round.id, siloId: silo.siloId },
          { status: 'evaluated', evaluation: report.evaluation, reportedAt: new Date() },
        );
    });
    await this.audit.record({
      actor: { type: 'silo', id: silo.siloId, name: silo.name },
      action: 'round.evaluation.reported',
      subject: { studyId, siloId: silo.siloId },
      details: { round: roundNumber, modelHash: report.modelHash, evaluation: report.evaluation },
    });
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
    const { study, round } = await this.openRoundFor(silo, studyId, roundNumber);
    await this.db.transaction(async (tx) => {
      const locked = await this.lockRound(tx, round.id);
      this.assertOpen(locked);
      await tx
        .getRepository(RoundParticipantEntity)
        .update(
          { roundId: round.id, siloId: silo.siloId, status: 'waiting' },
          { status: 'failed', failure: { code: report.code, message: report.message }, reportedAt: new Date() },
        );
      const remaining = study.participants.filter((s) => s !== silo.siloId);
      if (study.plan.participation.onSiloFailure === 'fail-study') {
        await this.failStudy(tx, study, locked, `silo ${silo.name} could not take part: ${report.message}`);
      } else {
        await tx.getRepository(StudyEntity).update(study.id, { participants: remaining });
      }
    });
    await this.audit.record({
      actor: { type: 'silo', id: silo.siloId, name: silo.name },
      action: 'round.silo.failed',
      subject: { studyId, siloId: silo.siloId },
      details: { round: roundNumber, code: report.code, message: report.message },
    });
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

  /** Closes one round if it is still open and due; the row lock makes this safe across hub processes. */
  async closeRound(roundId: string, now = new Date()): Promise<void> {
    const events: { action: string; studyId: string; details: Record<string, unknown> }[] = [];
    await this.db.transaction(async (tx) => {
      const round = await this.lockRound(tx, roundId);
      if (round.status !== 'open') return;
      const study = await tx
        .getRepository(StudyEntity)
        .findOneOrFail({ where: { id: round.studyId }, lock: { mode: 'pessimistic_write' } });
      const participants = await tx.getRepository(RoundParticipantEntity).find({ where: { roundId } });
      const waiting = participants.filter((p) => p.status === 'waiting');
      if (waiting.length > 0 && round.deadlineAt.getTime() > now.getTime()) return; // not due after all
      const reported = participants.filter((p) => p.status === 'uploaded' || p.status === 'evaluated');
      const plan = study.plan.participation;
      const active = study.participants.length;
      const summary: RoundSummary = {
        reported: reported.length,
        participants: participants.length,
        totalExamples: reported.reduce((a, p) => a + (p.numExamples ?? 0), 0),
        evaluation: summarizeEvaluations(reported.flatMap((p) => (p.evaluation ? [p.evaluation] : []))),
      };
      if (waiting.length > 0) {
        await tx
          .getRepository(RoundParticipantEntity)
          .update({ roundId, siloId: In(waiting.map((p) => p.siloId)), status: 'waiting' }, { status: 'late' });
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
        const blocked = round.kind === 'train' ? await this.budgetBlocks(tx, study) : null;
        if (blocked) {
          // Silos that uploaded in the failed attempt spent privacy: a retry may no longer fit the budget.
          await tx
            .getRepository(RoundEntity)
            .update(roundId, { status: 'retried', closedAt: now, closeReason: why, summary });
          await tx.getRepository(StudyEntity).update(study.id, { endReason: blocked });
          await this.openRound(
            tx,
            study,
            round.number,
            round.attempt + 1,
            'evaluate',
            round.modelHash,
            study.participants,
          );
          events.push({
            action: 'privacy.budget.reached',
            studyId: study.id,
            details: { round: round.number, reason: blocked },
          });
        } else if (round.attempt <= plan.maxRoundRetries) {
          await tx
            .getRepository(RoundEntity)
            .update(roundId, { status: 'retried', closedAt: now, closeReason: why, summary });
          await this.openRound(
            tx,
            study,
            round.number,
            round.attempt + 1,
            round.kind,
            round.modelHash,
            study.participants,
          );
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
        const blocked = await this.budgetBlocks(tx, study);
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
      await this.openRound(tx, study, next, 1, kind, resultHash, study.participants);
      events.push({ action: 'round.opened', studyId: study.id, details: { round: next, kind, modelHash: resultHash } });
    });
    for (const e of events) {
      await this.audit.record({
        actor: SYSTEM_ACTOR,
        action: e.action,
        subject: { studyId: e.studyId },
        details: e.details,
      });
    }
    // Each study's end is sealed by a signed checkpoint of the audit chain.
    if (events.some((e) => e.action === 'study.completed' || e.action === 'study.failed')) {
      await this.checkpoints.checkpointNow();
    }
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
        if (!p.updateHash || !p.numExamples) continue;
        yield { update: payloadOfFrame(await blobs.get(p.updateHash)), weight: p.numExamples, siloId: p.siloId };
      }
    }
    const mechanism = this.ledger.mechanismOf(study.planHash, study.plan);
    const aggregator = aggregatorFor(study.plan, global.length, mechanism, participants);
    const outcome = await aggregateRound(global, updates(), aggregator, optimizer);
    const stateHash = await this.blobs.put(optimizer.serializeState());
    return { weights: outcome.weights, stateHash, trace: outcome.trace.map((t) => ({ ...t })) };
  }

  /** Why a further training round may not open (a participant would pass the study's ε target), or null. */
  private async budgetBlocks(tx: EntityManager, study: StudyEntity): Promise<string | null> {
    const mechanism = this.ledger.mechanismOf(study.planHash, study.plan);
    if (!mechanism) return null;
    const over = await this.ledger.overBudget(tx, study.id, mechanism, study.participants);
    if (!over.length) return null;
    const worst = over.reduce((a, b) => (b.nextRoundEpsilon > a.nextRoundEpsilon ? b : a));
    return `privacy budget reached: another round would take ${over.length} silo(s) to ε = ${worst.nextRoundEpsilon.toPrecision(4)} > target ${mechanism.targetEpsilon} (δ = ${mechanism.delta})`;
  }

  private async openRound(
    tx: EntityManager,
    study: StudyEntity,
    number: number,
    attempt: number,
    kind: 'train' | 'evaluate',
    modelHash: string,
    participants: string[],
  ): Promise<void> {
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
  }

  private async failStudy(tx: EntityManager, study: StudyEntity, round: RoundEntity, reason: string): Promise<void> {
    await tx
      .getRepository(RoundEntity)
      .update({ id: round.id, status: 'open' }, { status: 'failed', closedAt: new Date(), closeReason: reason });
    await tx.getRepository(StudyEntity).update(study.id, { status: 'failed', endReason: reason, endedAt: new Date() });
  }

  private async openRoundFor(
    silo: SiloIdentity,
    studyId: string,
    roundNumber: number,
  ): Promise<{ study: StudyEntity; round: RoundEntity }> {
    const study = await this.db.getRepository(StudyEntity).findOne({ where: { id: studyId } });
    if (!study || !study.plan.silos.includes(silo.siloId))
      throw new HubException(HubErrorCode.NOT_FOUND, `No study ${studyId} is open to this silo.`);
    if (!study.participants.includes(silo.siloId)) {
      throw new HubException(HubErrorCode.NOT_A_PARTICIPANT, `This silo does not take part in study "${study.name}".`);
    }
    if (study.status !== 'running')
      throw new HubException(HubErrorCode.ROUND_CLOSED, `Study "${study.name}" is ${study.status}.`);
    const round = await this.db.getRepository(RoundEntity).findOne({ where: { studyId, status: 'open' } });
    if (!round) throw new HubException(HubErrorCode.ROUND_CLOSED, `Study "${study.name}" has no open round.`);
    if (round.number !== roundNumber) {
      throw new HubException(
        roundNumber < round.number ? HubErrorCode.ROUND_CLOSED : HubErrorCode.WRONG_ROUND,
        roundNumber < round.number
          ? `Round ${roundNumber} is closed (the study is at round ${round.number}).`
          : `Round ${roundNumber} is not open (the study is at round ${round.number}).`,
      );
    }
    this.assertOpen(round);
    return { study, round };
  }

  private assertOpen(round: RoundEntity): void {
    if (round.status !== 'open')
      throw new HubException(HubErrorCode.ROUND_CLOSED, `Round ${round.number} is ${round.status}.`);
    if (round.deadlineAt.getTime() <= Date.now()) {
      throw new HubException(
        HubErrorCode.ROUND_CLOSED,
        `Round ${round.number}'s deadline passed at ${round.deadlineAt.toISOString()}: the report is late.`,
      );
    }
  }

  private async lockRound(tx: EntityManager, id: string): Promise<RoundEntity> {
    return tx.getRepository(RoundEntity).findOneOrFail({ where: { id }, lock: { mode: 'pessimistic_write' } });
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
   * bytes back.
   */
  private async signed(receipt: UpdateReceipt): Promise<UpdateReceipt> {
    const key = await this.signingKeys.signingKey();
    const { signature: _none, ...payload } = receipt;
    return { ...payload, signature: signReceipt(payload, key.privateKey) };
  }

  private async recordRefusal(silo: SiloIdentity, studyId: string, round: number, err: unknown): Promise<void> {
    if (!(err instanceof HubException)) return;
    await this.audit.record({
      actor: { type: 'silo', id: silo.siloId, name: silo.name },
      action: 'round.update.refused',
      subject: { studyId, siloId: silo.siloId },
      details: { round, code: err.code, reason: err.message },
    });
  }
}
