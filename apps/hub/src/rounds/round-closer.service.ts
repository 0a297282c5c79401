import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { AuditCheckpointService } from '../audit/audit-checkpoint.service';
import { AuditTrail, SYSTEM_ACTOR } from '../audit/audit-trail';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import { faultPoint } from '../faults/fault-point.util';
import { PrivacyLedgerService, type PrivacyCharge } from '../privacy/privacy-ledger.service';
import type { RoundParticipantEntity } from '../study-state/round-participant.entity';
import type { RoundEntity } from '../study-state/round.entity';
import type { StudyEntity } from '../study-state/study.entity';
import { decideClose, type CloseDecision } from './close-decision';
import { RoundAggregator, type Aggregate } from './round-aggregator.service';
import { RoundOpener } from './round-opener.service';
import { flaggedUpdates } from './round-screening.util';
import { summaryOf } from './round-summary.util';
import { RoundsRepository, type RoundsUnitOfWork } from './rounds.repository';

/** An audit event of a round transition, recorded in the transaction that makes it. */
interface RoundEvent {
  action: string;
  studyId: string;
  siloId?: string;
  details: Record<string, unknown>;
}

/** What one transaction of a close did: its records, and the privacy charges of the tasks it issued. */
interface Effects {
  events: RoundEvent[];
  charges: { studyId: string; charges: PrivacyCharge[] }[];
}

/** A round this hub claimed for aggregation. */
interface Claim {
  roundId: string;
  token: string;
}

/** How often a claim's holder renews its lease (CLOSE_LEASE_SECONDS, rounds.repository.ts). */
const RENEW_EVERY_MS = 5_000;

/**
 * Closes rounds, exactly once across hub processes, without holding a lock while it aggregates:
 *
 * 1. DECIDE under the round's and the study's row locks (decideClose). Every outcome but aggregation is applied
 *    there and then. For aggregation the round is CLAIMED instead: status 'closing' (no more reports accepted), a
 *    random claim token and a lease.
 * 2. AGGREGATE with no transaction open: check each stored update against its name, stream the good ones through
 *    the aggregator, store the result. The lease is renewed meanwhile.
 * 3. COMMIT under the locks again, only if the round still carries this hub's claim: the round closed, the next
 *    one opened and charged, and every audit record of it, in one transaction.
 *
 * A hub killed in step 2 leaves a claim that lapses; the next tick (of any hub) claims the round again and redoes
 * step 2 from the same frozen inputs. Results of an abandoned step 2 are blobs no row names (swept at boot).
 */
@Injectable()
export class RoundCloser implements OnModuleInit {
  private readonly logger = new Logger(RoundCloser.name);

  constructor(
    private readonly repository: RoundsRepository,
    private readonly aggregator: RoundAggregator,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
    private readonly checkpoints: AuditCheckpointService,
    private readonly ledger: PrivacyLedgerService,
    private readonly opener: RoundOpener,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
  ) {}

  /**
   * On the embedded database this process is the only hub there can be (ADR 0002): a claim found at boot belongs to
   * a process that died, and is taken back now rather than after its lease.
   */
  async onModuleInit(): Promise<void> {
    if (this.config.databaseUrl !== undefined) return;
    await this.repository.expireAllClaims();
  }

  /** The rounds that are due: open ones every participant reported or past their deadline, and lapsed claims. */
  dueRounds(now: Date): Promise<string[]> {
    return this.repository.dueRounds(now);
  }

  /** Closes one round if it is due and no other hub is closing it (see the class comment). */
  async closeRound(roundId: string, now = new Date()): Promise<void> {
    const started = performance.now();
    const claim = await this.inTransaction((tx, effects) => this.decideOrClaim(tx, roundId, now, effects));
    if (!claim) return;
    const lease = this.keepLease(claim);
    // Where a close spends its time, logged at info (bench:round-latency reads it; docs/benchmarks.md §13).
    const timing = {
      claimedMs: performance.now() - started,
      verifyMs: 0,
      whileReading: false,
      aggregateMs: 0,
      commitMs: 0,
    };
    try {
      const aggregate = await this.aggregator.aggregateClaimed(claim.roundId, timing);
      timing.aggregateMs = performance.now() - started - timing.claimedMs - timing.verifyMs;
      await faultPoint('after-aggregation');
      if (lease.lost()) {
        this.logger.warn(`round ${roundId}: the close claim lapsed while aggregating; another hub takes it over`);
        return;
      }
      const committing = performance.now();
      await this.inTransaction((tx, effects) => this.commitClaimed(tx, claim, aggregate, now, effects));
      timing.commitMs = performance.now() - committing;
      const ms = (x: number) => Math.round(x);
      this.logger.log(
        `round ${roundId} closed: claimed in ${ms(timing.claimedMs)} ms, stored updates ` +
          `${timing.whileReading ? 'hashed as they were summed, re-checked' : 'verified'} in ${ms(timing.verifyMs)} ms, ` +
          `aggregated and stored in ${ms(timing.aggregateMs)} ms, committed (next round opened) in ` +
          `${ms(timing.commitMs)} ms`,
      );
    } finally {
      lease.stop();
    }
  }

  /**
   * Runs `work` in a transaction, then writes the audit records and charges it collected in that same transaction
   * (after every row lock: the chain's advisory lock is always taken last). Seals an ended study with a checkpoint.
   */
  private async inTransaction<T>(work: (tx: RoundsUnitOfWork, effects: Effects) => Promise<T>): Promise<T> {
    const effects: Effects = { events: [], charges: [] };
    const result = await this.repository.inTransaction(async (tx) => {
      const value = await work(tx, effects);
      for (const e of effects.events) {
        await this.audit.record({
          actor: SYSTEM_ACTOR,
          action: e.action,
          subject: { studyId: e.studyId, ...(e.siloId ? { siloId: e.siloId } : {}) },
          details: e.details,
        });
      }
      for (const c of effects.charges) await this.ledger.auditCharges(c.studyId, c.charges);
      if (effects.events.length > 0) await faultPoint('before-close-commit');
      return value;
    });
    if (effects.events.length > 0) await faultPoint('after-close-commit');
    if (effects.events.some((e) => e.action === 'study.completed' || e.action === 'study.failed')) {
      await this.checkpoints.checkpointNow();
    }
    return result;
  }

  /** Step 1: applies the decision, or claims the round when it must be aggregated (returns the claim). */
  private async decideOrClaim(
    tx: RoundsUnitOfWork,
    roundId: string,
    now: Date,
    effects: Effects,
  ): Promise<Claim | null> {
    const round = await tx.lockRound(roundId);
    if (round.status === 'closing') return this.takeOverLapsed(tx, round);
    if (round.status !== 'open') return null;
    const study = await tx.lockStudy(round.studyId);
    const participants = await tx.participants(roundId);
    const decision = decideClose({
      round,
      participants,
      activeSilos: study.participants.length,
      rules: rulesOf(study),
      now,
    });
    if (decision.outcome === 'not-due') return null;
    if (decision.outcome !== 'aggregate') {
      await this.apply(tx, study, round, participants, decision, now, effects);
      return null;
    }
    const token = randomUUID();
    await tx.claimForClose(roundId, token);
    return { roundId, token };
  }

  /** A 'closing' round whose claim lapsed (its hub died or stalled) is claimed again; a live claim is left alone. */
  private async takeOverLapsed(tx: RoundsUnitOfWork, round: RoundEntity): Promise<Claim | null> {
    const token = randomUUID();
    if (!(await tx.takeOverLapsedClaim(round.id, token))) return null;
    this.logger.warn(`round ${round.number} attempt ${round.attempt}: a lapsed close claim is taken over`);
    return { roundId: round.id, token };
  }

  /** Renews the claim's lease while step 2 runs; `lost()` tells whether a renewal found the claim gone. */
  private keepLease(claim: Claim): { lost(): boolean; stop(): void } {
    let lost = false;
    const timer = setInterval(() => {
      void this.repository
        .renewClaim(claim.roundId, claim.token)
        .then((renewed) => {
          if (!renewed) lost = true;
        })
        .catch((err: unknown) => this.logger.warn(`could not renew a close claim: ${(err as Error).message}`));
    }, RENEW_EVERY_MS);
    timer.unref();
    return { lost: () => lost, stop: () => clearInterval(timer) };
  }

  /** Step 3: commits the aggregate if the round still carries this claim; otherwise leaves everything as it is. */
  private async commitClaimed(
    tx: RoundsUnitOfWork,
    claim: Claim,
    aggregate: Aggregate,
    now: Date,
    effects: Effects,
  ): Promise<void> {
    const round = await tx.lockRound(claim.roundId);
    if (round.status !== 'closing' || round.closeClaim !== claim.token) {
      this.logger.warn(
        `round ${round.number}: the close claim is no longer this hub's (now ${round.status}); result discarded`,
      );
      return;
    }
    const study = await tx.lockStudy(round.studyId);
    const participants = await tx.participants(round.id);
    for (const [siloId, message] of aggregate.unusable) {
      const failure = { code: 'UPDATE_CORRUPTED', message };
      await tx.setAside(round.id, siloId, failure);
      const p = participants.find((x) => x.siloId === siloId);
      if (p) p.status = 'failed';
      this.logger.error(`round ${round.number} attempt ${round.attempt}: ${message}; not aggregated`);
      effects.events.push({
        action: 'round.silo.failed',
        studyId: study.id,
        siloId,
        details: { round: round.number, attempt: round.attempt, ...failure },
      });
    }
    // Decided again with the set-asides and the study as it is now (a silo may have withdrawn meanwhile); the
    // deadline is passed by construction (the round was due when claimed). Updates screening left out count as not
    // reported for the decision only: their rows stay 'uploaded' (they did report, and were charged).
    const excluded = new Set(aggregate.excluded);
    let decision = decideClose({
      round: { ...round, deadlineAt: new Date(0) },
      participants: participants.map((p) => (excluded.has(p.siloId) ? { ...p, status: 'failed' as const } : p)),
      activeSilos: study.participants.length,
      rules: rulesOf(study),
      now,
    });
    if (decision.outcome === 'not-due') throw new Error('a round past its deadline cannot be not due');
    const notAggregated = aggregate.screening?.notAggregated;
    if (decision.outcome === 'short' && notAggregated)
      decision = { ...decision, why: `${decision.why}; ${notAggregated}` };
    if (decision.outcome === 'aggregate' && !sameSet(decision.reported, aggregate.aggregated)) {
      // Cannot happen while closing rounds accept no report; if it does, nothing is committed from a stale input.
      this.logger.error(`round ${round.number}: its reports changed while it was aggregated; closing it again`);
      await tx.reopen(round.id);
      return;
    }
    if (aggregate.screening) {
      for (const flagged of flaggedUpdates(aggregate.screening, round)) {
        effects.events.push({ action: 'round.update.flagged', studyId: study.id, ...flagged });
      }
    }
    await this.apply(tx, study, round, participants, decision, now, effects, aggregate);
  }

  /** The effects of a decision, in the caller's transaction (the records go to `effects`). */
  private async apply(
    tx: RoundsUnitOfWork,
    study: StudyEntity,
    round: RoundEntity,
    participants: RoundParticipantEntity[],
    decision: Exclude<CloseDecision, { outcome: 'not-due' }>,
    now: Date,
    effects: Effects,
    aggregate: Aggregate | null = null,
  ): Promise<void> {
    const released = { closeClaim: null, closeClaimExpiresAt: null };
    const summary = summaryOf(study, round, participants);
    if (aggregate?.screening) summary.screening = aggregate.screening;
    const waiting = participants.filter((p) => p.status === 'waiting');
    if (waiting.length > 0) {
      await tx.markLate(
        round.id,
        waiting.map((p) => p.siloId),
      );
    }
    const event = (action: string, details: Record<string, unknown>) =>
      effects.events.push({ action, studyId: study.id, details });
    // A paused study opens no round: the one it would open is held back and opened on resume (StudyLifecycleService).
    const openNext = async (next: {
      number: number;
      attempt: number;
      kind: 'train' | 'evaluate';
      modelHash: string;
    }) => {
      if (study.pausedAt) {
        await tx.updateStudy(study.id, { pausedNextRound: next });
        event('study.round.held', { round: next.number, attempt: next.attempt, kind: next.kind, reason: 'paused' });
        return false;
      }
      effects.charges.push({ studyId: study.id, charges: await this.opener.open(tx.open, study, next) });
      return true;
    };
    const training = study.plan.training.rounds;
    switch (decision.outcome) {
      case 'complete-without-evaluation':
      case 'complete': {
        const reason = decision.outcome === 'complete' ? 'final evaluation complete' : decision.reason;
        await tx.endAttempt(round.id, { status: 'closed', closedAt: now, closeReason: reason, summary, ...released });
        const ended =
          decision.outcome === 'complete' ? `completed ${training} rounds` : `completed ${training} rounds; ${reason}`;
        await tx.updateStudy(study.id, { status: 'completed', endedAt: now, endReason: study.endReason ?? ended });
        event('round.closed', { round: round.number, kind: 'evaluate', summary });
        event('study.completed', {
          finalModelHash: round.modelHash,
          evaluation: decision.outcome === 'complete' ? summary.evaluation : null,
        });
        return;
      }
      case 'fail-too-few-silos':
        await tx.failStudy(study.id, round.id, decision.reason);
        event('study.failed', { reason: 'too few silos remain', round: round.number });
        return;
      case 'short': {
        const blocked = round.kind === 'train' ? await this.budgetBlocks(tx, study, round.number) : null;
        const retried = { status: 'retried' as const, closedAt: now, closeReason: decision.why, summary, ...released };
        if (blocked) {
          // Silos that uploaded in the failed attempt spent privacy: a retry may no longer fit the budget.
          await tx.endAttempt(round.id, retried);
          await tx.updateStudy(study.id, { endReason: blocked });
          const kind = 'evaluate';
          await openNext({ number: round.number, attempt: round.attempt + 1, kind, modelHash: round.modelHash });
          event('privacy.budget.reached', { round: round.number, reason: blocked });
        } else if (decision.retryAllowed) {
          await tx.endAttempt(round.id, retried);
          const { number, kind, modelHash } = round;
          await openNext({ number, attempt: round.attempt + 1, kind, modelHash });
          event('round.retried', { round: round.number, attempt: round.attempt, reason: decision.why });
        } else {
          await tx.failStudy(study.id, round.id, `${decision.why}; no retries left`);
          event('study.failed', { reason: decision.why });
        }
        return;
      }
      case 'aggregate': {
        if (!aggregate) throw new Error('a round is aggregated only under a claim');
        summary.aggregationTrace = aggregate.trace;
        await tx.endAttempt(round.id, {
          status: 'closed',
          closedAt: now,
          closeReason: waiting.length ? `deadline: ${waiting.length} silo(s) late` : 'all silos reported',
          resultModelHash: aggregate.resultHash,
          summary,
          ...released,
        });
        await tx.updateStudy(study.id, {
          currentModelHash: aggregate.resultHash,
          optimizerStateHash: aggregate.stateHash,
          ...(aggregate.controlVariateHash ? { controlVariateHash: aggregate.controlVariateHash } : {}),
        });
        event('round.closed', {
          round: round.number,
          attempt: round.attempt,
          modelHash: aggregate.resultHash,
          reported: decision.reported.length,
          late: waiting.length,
          ...(aggregate.screening ? { excluded: aggregate.excluded } : {}),
        });
        let kind = decision.nextKind;
        if (kind === 'train') {
          const blocked = await this.budgetBlocks(tx, study, decision.nextRound);
          if (blocked) {
            // No round may take a participant past the study's target: evaluate the model so far and complete.
            kind = 'evaluate';
            await tx.updateStudy(study.id, { endReason: blocked });
            event('privacy.budget.reached', { afterRound: round.number, reason: blocked });
          }
        }
        if (await openNext({ number: decision.nextRound, attempt: 1, kind, modelHash: aggregate.resultHash })) {
          event('round.opened', { round: decision.nextRound, kind, modelHash: aggregate.resultHash });
        }
        return;
      }
    }
  }

  /**
   * Why training round `number` may not open, or null: issuing it would take a participant past the approved plan
   * (more rounds than planned, or a charged ε above the target), counting for each silo the larger of the hub's
   * charges and the silo's own reports.
   */
  private async budgetBlocks(tx: RoundsUnitOfWork, study: StudyEntity, number: number): Promise<string | null> {
    const mechanism = this.ledger.mechanismOf(study.planHash, study.plan);
    if (!mechanism) return null;
    const over = await this.ledger.planLimits(tx.open, study, { number, kind: 'train' }, study.participants);
    if (!over.length) return null;
    return `privacy budget reached: training round ${number} would break the approved plan for ${over.length} silo(s): ${over[0]!.reason} (δ = ${mechanism.delta})`;
  }
}

function rulesOf(study: StudyEntity) {
  const { minSilosPerRound, maxRoundRetries } = study.plan.participation;
  return { minSilosPerRound, maxRoundRetries, rounds: study.plan.training.rounds };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}
