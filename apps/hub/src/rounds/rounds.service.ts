import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import {
  metricsOfEvaluation,
  type EvaluationReport,
  type PersonalizationMetrics,
  type FailureReport,
  type SiloTask,
  type UpdateReceipt,
} from '@tessera/protocol';
import type { Readable } from 'node:stream';
import { ReadCache } from '../database/read-cache';
import { AuditCheckpointService } from '../audit/audit-checkpoint.service';
import { AuditTrail, SYSTEM_ACTOR } from '../audit/audit-trail';
import { PrivacyLedgerService, type PrivacyCharge } from '../privacy/privacy-ledger.service';
import { assertFaultInjectionAllowed } from '../faults/fault-point.util';
import { BlobStore } from '../blobs/blob-store';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { SiloIdentity } from '../silos/silo-identity';
import type { StudyEntity } from '../study-state/study.entity';
import { evaluationReportProblem, personalizationReportProblem } from './release-check.util';
import { checkPrivacyReport, recordRefusal } from './round-access.util';
import { assertOpen } from '../study-state/open-round.util';
import { RoundCloser } from './round-closer.service';
import { RoundOpener } from './round-opener.service';
import { RoundViewsRepository } from './round-views.repository';
import { RoundsRepository, type OpenTransaction } from './rounds.repository';
import { UpdateAcceptanceService } from './update-acceptance.service';

/** How often open rounds are checked for deadlines and quorum (uploads also trigger a check at once). */
const TICK_MS = 500;
/** Long-poll granularity. */
const POLL_MS = 250;

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
  /** A check is to end the long polls' waits when it is done (see wake). */
  private tasksChangedOnTick = false;
  /** Long polls between two reads of their tasks; called with true when tasks changed (tasksChanged). */
  private readonly taskWaiters = new Set<(changed: boolean) => void>();
  /** When this hub last changed what silos are asked to do (tasksChanged), by its clock. */
  private tasksChangedAt = 0;
  /** When each silo last began to read its studies here (studiesRead): an older read may have missed a change. */
  private readonly studiesReadAt = new Map<string, number>();

  constructor(
    private readonly repository: RoundsRepository,
    private readonly views: RoundViewsRepository,
    private readonly blobs: BlobStore,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
    private readonly checkpoints: AuditCheckpointService,
    private readonly ledger: PrivacyLedgerService,
    private readonly acceptance: UpdateAcceptanceService,
    private readonly opener: RoundOpener,
    private readonly closer: RoundCloser,
    private readonly cache: ReadCache,
  ) {}

  onModuleInit(): void {
    assertFaultInjectionAllowed();
    this.timer = setInterval(() => this.wake('check'), TICK_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Checks open rounds now; coalesces concurrent requests. `tasks`: the caller changed what silos are asked to do (a
   * study started or resumed), so agents waiting in a long poll look again once the check is done; `check` (after an
   * upload, and every TICK_MS): they look again only if a round closed (and the next one opened).
   */
  wake(reason: 'tasks' | 'check' = 'tasks'): void {
    if (reason === 'tasks') this.tasksChangedOnTick = true;
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
          this.wake('check');
        } else if (this.tasksChangedOnTick) {
          this.tasksChangedOnTick = false;
          this.tasksChanged();
        }
      });
  }

  /**
   * Ends the wait of every long poll now (a round closed and the next opened, a study started or ended): each reads
   * its tasks again and answers, even with none, so an agent learns at once that its study ended.
   */
  private tasksChanged(): void {
    this.tasksChangedAt = Date.now();
    const waiting = [...this.taskWaiters];
    this.taskWaiters.clear();
    for (const wakeUp of waiting) wakeUp(true);
  }

  /**
   * Round 1 of a study that just started (inside the start transaction). Returns the privacy charges of the tasks
   * it issued: the caller records them (auditCharges) in that same transaction.
   */
  openFirstRound(tx: OpenTransaction, study: StudyEntity): Promise<PrivacyCharge[]> {
    return this.opener.openFirstRound(tx, study);
  }

  /** Audit records of privacy charges made when tasks were issued; call inside the transaction that made them. */
  async auditCharges(studyId: string, charges: PrivacyCharge[]): Promise<void> {
    await this.ledger.auditCharges(studyId, charges);
  }

  abandonOpenRounds(tx: OpenTransaction, studyId: string): Promise<void> {
    return this.opener.abandonOpenRounds(tx, studyId);
  }

  /**
   * Long poll: the tasks waiting for this silo, returned as soon as there is one, as soon as this hub changed what
   * silos are asked to do (a round closed, a study started or ended: answered even when empty, so the agent reads
   * its studies again), or after `waitMs`.
   */
  async tasksFor(siloId: string, waitMs: number): Promise<SiloTask[]> {
    const until = Date.now() + waitMs;
    for (;;) {
      const tasks = await this.pendingTasks(siloId);
      if (tasks.length > 0 || Date.now() >= until || !this.timer) return tasks;
      // A change since this silo last read its studies (the study it reported the last round of ended in between):
      // it would not learn of it before the wait ends, so the answer goes now and it reads its studies again. Once
      // per change: a client that does not read its studies again waits in its next poll, it does not spin.
      if (this.tasksChangedAt >= (this.studiesReadAt.get(siloId) ?? Infinity)) {
        this.studiesReadAt.set(siloId, this.tasksChangedAt + 1);
        return tasks;
      }
      // Woken as soon as this hub opens or closes a round (tasksChanged); POLL_MS still bounds the wait for changes
      // made by another hub replica.
      const changed = await new Promise<boolean>((resolve) => {
        const wakeUp = (byChange: boolean) => {
          clearTimeout(timeout);
          this.taskWaiters.delete(wakeUp);
          resolve(byChange);
        };
        const timeout = setTimeout(() => wakeUp(false), Math.min(POLL_MS, Math.max(0, until - Date.now())));
        this.taskWaiters.add(wakeUp);
      });
      if (changed) return this.pendingTasks(siloId);
    }
  }

  /**
   * A silo begins to read its studies (their status, plans, pauses): a change made from now on is one it has not seen,
   * and ends its next long poll at once (tasksFor).
   */
  studiesRead(siloId: string): void {
    this.studiesReadAt.set(siloId, Date.now());
  }

  private async pendingTasks(siloId: string): Promise<SiloTask[]> {
    // Each waiting agent asks every POLL_MS; on the embedded database's one connection those polls queued with the
    // console's reads. Reused until a write commits (ReadCache: exact there, off on a server database); the time
    // left is computed afresh below.
    const rows = await this.cache.read(`silo-tasks:${siloId}`, () => this.views.pendingTasks(siloId));
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
      ...(r.control_variate_hash ? { controlVariateHash: r.control_variate_hash } : {}),
    }));
  }

  /**
   * A silo may download a model only if it is one published to it, or the SCAFFOLD control variate of a study it
   * takes part in (ADR 0019).
   */
  async modelForSilo(siloId: string, hash: string): Promise<Readable> {
    if (!(await this.views.publishedTo(siloId, hash)) || !(await this.blobs.has(hash))) {
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
    if (fresh) this.wake('check');
    return receipt;
  }

  async acceptEvaluation(
    silo: SiloIdentity,
    studyId: string,
    roundNumber: number,
    report: EvaluationReport,
  ): Promise<{ accepted: true }> {
    const { study, round } = await this.repository.openRoundFor(silo, studyId, roundNumber);
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
      const problem =
        evaluationReportProblem(study.plan, mechanism, report.evaluation) ??
        personalizationReportProblem(study.plan, mechanism, report);
      if (problem)
        throw new HubException(HubErrorCode.VALIDATION_FAILED, `The evaluation report is refused: ${problem}.`);
      // Only a noisy evaluation or a DP personalization spends privacy; its report must say what it spent.
      checkPrivacyReport(
        mechanism !== null && (mechanism.evaluation !== null || mechanism.personalizationSteps > 0),
        mechanism,
        report.privacy,
        'evaluation report',
      );
      await this.repository.inTransaction(async (tx) => {
        const locked = await tx.lockRound(round.id);
        assertOpen(locked);
        const p = await tx.participant(round.id, silo.siloId);
        if (!p) throw new HubException(HubErrorCode.NOT_A_PARTICIPANT, 'This silo does not take part in this round.');
        if (p.status !== 'waiting')
          throw new HubException(HubErrorCode.DUPLICATE_UPDATE, 'This silo already reported this round.');
        const metrics = report.evaluation ? metricsOfEvaluation(report.evaluation) : null;
        const personalization: PersonalizationMetrics | null = report.personalized
          ? {
              personalized: metricsOfEvaluation(report.personalized),
              localBaseline: report.localBaseline ? metricsOfEvaluation(report.localBaseline) : null,
            }
          : null;
        await tx.recordEvaluation(round.id, silo.siloId, {
          evaluation: metrics,
          personalization,
          privacy: report.privacy,
          reportedAt: new Date(),
        });
        const privacy = report.privacy
          ? await this.ledger.recordReport(
              tx.open,
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
            ...(personalization
              ? {
                  personalization,
                  releasedPersonalized: report.personalized,
                  ...(report.localBaseline ? { releasedLocalBaseline: report.localBaseline } : {}),
                }
              : {}),
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
    this.wake('check');
    return { accepted: true };
  }

  /** A silo cannot do its task (its data lacks a column, its privacy cap is reached, …). */
  async acceptFailure(
    silo: SiloIdentity,
    studyId: string,
    roundNumber: number,
    report: FailureReport,
  ): Promise<{ accepted: true }> {
    const { study, round } = await this.repository.openRoundFor(silo, studyId, roundNumber);
    const failedStudy = await this.repository.inTransaction(async (tx) => {
      const locked = await tx.lockRound(round.id);
      assertOpen(locked);
      const failure = { code: report.code, message: report.message };
      await tx.recordFailure(round.id, silo.siloId, failure, new Date());
      const remaining = study.participants.filter((s) => s !== silo.siloId);
      let failedStudy: string | null = null;
      if (study.plan.participation.onSiloFailure === 'fail-study') {
        failedStudy = `silo ${silo.name} could not take part: ${report.message}`;
        await tx.failStudy(study.id, locked.id, failedStudy);
      } else {
        await tx.updateStudy(study.id, { participants: remaining });
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
    this.wake('check');
    return { accepted: true };
  }

  /** Closes what is due: rounds every participant reported, rounds past their deadline, lapsed close claims. */
  async tick(now = new Date()): Promise<void> {
    const due = await this.closer.dueRounds(now);
    for (const id of due) await this.closer.closeRound(id, now);
    // A closed round opened the next one, or ended the study: waiting agents read their tasks now.
    if (due.length > 0) this.tasksChangedOnTick = true;
  }

  /** Closes one round if it is due and no other hub is closing it (RoundCloser). */
  closeRound(roundId: string, now = new Date()): Promise<void> {
    return this.closer.closeRound(roundId, now);
  }
}
