import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { serverControlStep } from '@tessera/ml';
import { float32Bytes, type EvaluationMetrics } from '@tessera/protocol';
import { DataSource, In, type EntityManager } from 'typeorm';
import { AuditCheckpointService } from '../audit/audit-checkpoint.service';
import { AuditTrail, SYSTEM_ACTOR } from '../audit/audit-trail';
import { BlobStore } from '../blobs/blob-store';
import { BlobIntegrityError } from '../blobs/blob-store.exception';
import { OffThreadSha256 } from '../blobs/off-thread-sha256';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import { faultPoint } from '../faults/fault-point.util';
import { PrivacyLedgerService, type PrivacyCharge } from '../privacy/privacy-ledger.service';
import { distributedNoiseTrace } from '../secagg/secagg-noise.util';
import { SecAggSessionsService } from '../secagg/secagg-sessions.service';
import { StudyEntity } from '../study-state/study.entity';
import { decideClose, type CloseDecision } from './close-decision';
import { float32FromBytes, serverOptimizerFor } from './model-math';
import { aggregateRoundUpdates, type RoundAggregationOutcome, type TraceEntry } from './round-aggregation';
import { lockRound } from '../study-state/open-round.util';
import { failStudy, RoundOpener } from './round-opener.service';
import { RoundParticipantEntity } from '../study-state/round-participant.entity';
import { flaggedUpdates } from './round-screening.util';
import { RoundEntity, type RoundSummary } from '../study-state/round.entity';

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

/** The aggregate computed outside the locks, with the exact inputs it was computed from. */
interface Aggregate {
  aggregated: string[];
  /** Uploaded updates found unusable (missing, unreadable, corrupted), by silo: never aggregated. */
  unusable: Map<string, string>;
  resultHash: string;
  stateHash: string;
  /** SCAFFOLD plans: the control variate c after this round (null for every other algorithm). */
  controlVariateHash: string | null;
  trace: object[];
  /** Silos whose flagged updates screening left out (the plan's screening.exclude); never aggregated. */
  excluded: string[];
  /** The round's screening, when the plan screens. */
  screening: RoundAggregationOutcome['screening'];
}

/** An aggregate that is not one: too few usable (or unexcluded) updates; step 3 decides what follows. */
function noAggregate(
  unusable: Map<string, string>,
  screening: Pick<Aggregate, 'excluded' | 'screening'> = { excluded: [], screening: null },
): Aggregate {
  return { aggregated: [], unusable, resultHash: '', stateHash: '', controlVariateHash: null, trace: [], ...screening };
}

/**
 * How long a claim lasts unless renewed, and how often its holder renews it. A hub that dies while aggregating
 * holds the round for at most the lease; the same hub restarted on the embedded database (which no other hub can
 * open) takes its own lapsed claims back at once.
 */
export const CLOSE_LEASE_SECONDS = 20;
const RENEW_EVERY_MS = 5_000;
/** Bytes per ranged read when the closer verifies a stored update against its name. */
const VERIFY_READ_BYTES = 4 * 2 ** 20;

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
  const withAccuracy = evals.flatMap((e) => (e.accuracy === null ? [] : [{ value: e.accuracy, n: e.n }]));
  return {
    accuracy: {
      unweighted: mean(withAccuracy.map((e) => e.value)),
      weighted: weightedMean(withAccuracy.map((e) => [e.value, e.n])),
    },
    loss: {
      unweighted: mean(withLoss.map((e) => e.loss)),
      weighted: weightedMean(withLoss.map((e) => [e.loss, e.n])),
    },
    auc: { unweighted: mean(evals.flatMap((e) => (e.auc === null ? [] : [e.auc]))) },
    noisy: evals.some((e) => e.noisy === true),
    ...summarizeTaskMetrics(evals),
  };
}

/** The task metrics of network plans (absent from registry evaluations, and then from the summary). */
const TASK_METRICS = ['balancedAccuracy', 'f1', 'mae', 'rmse', 'r2'] as const;

function summarizeTaskMetrics(evals: EvaluationMetrics[]): Partial<RoundSummary['evaluation']> {
  const out: Partial<RoundSummary['evaluation']> = {};
  for (const metric of TASK_METRICS) {
    const pairs = evals.flatMap((e): [number, number][] => {
      const value = e[metric];
      return typeof value === 'number' ? [[value, e.n]] : [];
    });
    if (pairs.length > 0) {
      out[metric] = { unweighted: mean(pairs.map(([v]) => v)), weighted: weightedMean(pairs) };
    }
  }
  return out;
}

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
    @InjectDataSource() private readonly db: DataSource,
    private readonly blobs: BlobStore,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
    private readonly checkpoints: AuditCheckpointService,
    private readonly ledger: PrivacyLedgerService,
    private readonly opener: RoundOpener,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    private readonly secureAggregation: SecAggSessionsService,
  ) {}

  /**
   * On the embedded database this process is the only hub there can be (ADR 0002): a claim found at boot belongs to
   * a process that died, and is taken back now rather than after its lease.
   */
  async onModuleInit(): Promise<void> {
    if (this.config.databaseUrl !== undefined) return;
    await this.db.query(`UPDATE rounds SET close_claim_expires_at = now() WHERE status = 'closing'`);
  }

  /** The rounds that are due: open ones every participant reported or past their deadline, and lapsed claims. */
  async dueRounds(now: Date): Promise<string[]> {
    const rows = (await this.db.query(
      `SELECT r.id FROM rounds r
        WHERE (r.status = 'open'
               AND (r.deadline_at <= $1
                    OR NOT EXISTS (SELECT 1 FROM round_participants p WHERE p.round_id = r.id AND p.status = 'waiting')))
           OR (r.status = 'closing' AND r.close_claim_expires_at <= now())
        ORDER BY r.opened_at`,
      [now],
    )) as { id: string }[];
    return rows.map((r) => r.id);
  }

  /** Closes one round if it is due and no other hub is closing it (see the class comment). */
  async closeRound(roundId: string, now = new Date()): Promise<void> {
    const started = performance.now();
    const claim = await this.inTransaction((tx, effects) => this.decideOrClaim(tx, roundId, now, effects));
    if (!claim) return;
    const lease = this.keepLease(claim);
    // Where a close spends its time, logged at info (bench:round-latency reads it; docs/benchmarks.md §13).
    const timing = { claimedMs: performance.now() - started, verifyMs: 0, aggregateMs: 0, commitMs: 0 };
    try {
      const aggregate = await this.aggregateClaimed(claim, timing);
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
        `round ${roundId} closed: claimed in ${ms(timing.claimedMs)} ms, stored updates verified in ` +
          `${ms(timing.verifyMs)} ms, aggregated and stored in ${ms(timing.aggregateMs)} ms, committed (next round ` +
          `opened) in ${ms(timing.commitMs)} ms`,
      );
    } finally {
      lease.stop();
    }
  }

  /**
   * Runs `work` in a transaction, then writes the audit records and charges it collected in that same transaction
   * (after every row lock: the chain's advisory lock is always taken last). Seals an ended study with a checkpoint.
   */
  private async inTransaction<T>(work: (tx: EntityManager, effects: Effects) => Promise<T>): Promise<T> {
    const effects: Effects = { events: [], charges: [] };
    const result = await this.db.transaction(async (tx) => {
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
  private async decideOrClaim(tx: EntityManager, roundId: string, now: Date, effects: Effects): Promise<Claim | null> {
    const round = await lockRound(tx, roundId);
    if (round.status === 'closing') return this.takeOverLapsed(tx, round);
    if (round.status !== 'open') return null;
    const study = await lockStudy(tx, round.studyId);
    const participants = await tx.getRepository(RoundParticipantEntity).find({ where: { roundId } });
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
    await tx
      .getRepository(RoundEntity)
      .createQueryBuilder()
      .update()
      .set({
        status: 'closing',
        closeClaim: token,
        closeClaimExpiresAt: () => `now() + interval '${CLOSE_LEASE_SECONDS} seconds'`,
      })
      .where({ id: roundId })
      .execute();
    return { roundId, token };
  }

  /** A 'closing' round whose claim lapsed (its hub died or stalled) is claimed again; a live claim is left alone. */
  private async takeOverLapsed(tx: EntityManager, round: RoundEntity): Promise<Claim | null> {
    const token = randomUUID();
    const taken = await tx
      .getRepository(RoundEntity)
      .createQueryBuilder()
      .update()
      .set({ closeClaim: token, closeClaimExpiresAt: () => `now() + interval '${CLOSE_LEASE_SECONDS} seconds'` })
      .where('id = :id AND status = :status AND close_claim_expires_at <= now()', { id: round.id, status: 'closing' })
      .execute();
    if (!taken.affected) return null;
    this.logger.warn(`round ${round.number} attempt ${round.attempt}: a lapsed close claim is taken over`);
    return { roundId: round.id, token };
  }

  /** Renews the claim's lease while step 2 runs; `lost()` tells whether a renewal found the claim gone. */
  private keepLease(claim: Claim): { lost(): boolean; stop(): void } {
    let lost = false;
    const timer = setInterval(() => {
      void this.db
        .getRepository(RoundEntity)
        .createQueryBuilder()
        .update()
        .set({ closeClaimExpiresAt: () => `now() + interval '${CLOSE_LEASE_SECONDS} seconds'` })
        .where('id = :id AND status = :status AND close_claim = :token', {
          id: claim.roundId,
          status: 'closing',
          token: claim.token,
        })
        .execute()
        .then((r) => {
          if (!r.affected) lost = true;
        })
        .catch((err: unknown) => this.logger.warn(`could not renew a close claim: ${(err as Error).message}`));
    }, RENEW_EVERY_MS);
    timer.unref();
    return { lost: () => lost, stop: () => clearInterval(timer) };
  }

  /**
   * Step 2, with no transaction open. The inputs cannot change meanwhile: a closing round accepts no report. An
   * accepted update whose stored bytes no longer match their name is never aggregated.
   */
  private async aggregateClaimed(claim: Claim, timing: { verifyMs: number }): Promise<Aggregate> {
    const round = await this.db.getRepository(RoundEntity).findOneByOrFail({ id: claim.roundId });
    const study = await this.db.getRepository(StudyEntity).findOneByOrFail({ id: round.studyId });
    if (study.plan.secureAggregation && round.kind === 'train') return this.aggregateSecurely(study, round);
    const participants = await this.db.getRepository(RoundParticipantEntity).find({ where: { roundId: round.id } });
    const unusable = new Map<string, string>();
    const verifying = performance.now();
    for (const p of participants) {
      if (p.status !== 'uploaded' || !p.updateHash) continue;
      const problem = await this.storedUpdateProblem(p.updateHash);
      if (problem !== null) unusable.set(p.siloId, `the stored update ${p.updateHash} ${problem}`);
    }
    timing.verifyMs = performance.now() - verifying;
    const usable = participants.filter((p) => p.status === 'uploaded' && p.updateHash && !unusable.has(p.siloId));
    if (usable.length < study.plan.participation.minSilosPerRound) {
      // Too few left to aggregate: step 3 decides what follows (retry, budget, failure) with the set-asides.
      return noAggregate(unusable);
    }
    const outcome = await this.aggregate(study, round, usable, participants.length);
    if (outcome.outcome === 'too-few-after-exclusion') return noAggregate(unusable, outcome);
    const { weights, stateHash, controlVariateHash, trace, aggregated, excluded, screening } = outcome;
    const resultHash = await this.blobs.put(float32Bytes(weights));
    return { aggregated, unusable, resultHash, stateHash, controlVariateHash, trace, excluded, screening };
  }

  /**
   * Step 2 of a round under secure aggregation: the unmasked, dequantised sum of the survivors' clipped updates,
   * divided by their number (equal weights: a secure sum cannot be weighted), is the FedAvg step the server optimizer
   * takes. Only this hub, holding the round's close claim, unmasks. A sum that cannot be unmasked (a corrupted share)
   * sets every survivor aside, so the round closes short and is retried under the plan's rules.
   */
  private async aggregateSecurely(study: StudyEntity, round: RoundEntity): Promise<Aggregate> {
    let unmasked: Awaited<ReturnType<SecAggSessionsService['unmask']>>;
    try {
      unmasked = await this.secureAggregation.unmask(round.id);
    } catch (err) {
      const session = await this.secureAggregation.find(round.id);
      const why = `the secure sum could not be unmasked (${(err as Error).message})`;
      return noAggregate(new Map((session?.contributors ?? []).map((siloId) => [siloId, why])));
    }
    const { sum, survivors, quantisationErrorBound } = unmasked;
    const delta = new Float32Array(sum.length);
    for (let i = 0; i < sum.length; i++) delta[i] = sum[i]! / survivors.length;
    const global = float32FromBytes(await this.blobs.get(round.modelHash));
    const optimizer = serverOptimizerFor(study.plan, global.length);
    if (study.optimizerStateHash) optimizer.restoreState(await this.blobs.get(study.optimizerStateHash));
    const step = optimizer.step(global, delta);
    const stateHash = await this.blobs.put(optimizer.serializeState());
    const resultHash = await this.blobs.put(float32Bytes(step.weights));
    const trace: TraceEntry[] = [
      {
        siloIds: survivors,
        record: {
          step: 'secure-aggregation',
          protocol: 'SecAgg+',
          summed: survivors.length,
          weights: 'equal',
          clipNorm: study.plan.secureAggregation?.clipNorm,
          quantisationErrorBound,
          individualUpdatesStored: false,
          noise: distributedNoiseTrace(study.plan, this.ledger.mechanismOf(study.planHash, study.plan), unmasked),
        },
      },
      { record: { ...step.trace } },
    ];
    return {
      aggregated: survivors,
      unusable: new Map(),
      resultHash,
      stateHash,
      controlVariateHash: null,
      trace,
      excluded: [],
      screening: null,
    };
  }

  /** Step 3: commits the aggregate if the round still carries this claim; otherwise leaves everything as it is. */
  private async commitClaimed(
    tx: EntityManager,
    claim: Claim,
    aggregate: Aggregate,
    now: Date,
    effects: Effects,
  ): Promise<void> {
    const round = await lockRound(tx, claim.roundId);
    if (round.status !== 'closing' || round.closeClaim !== claim.token) {
      this.logger.warn(
        `round ${round.number}: the close claim is no longer this hub's (now ${round.status}); result discarded`,
      );
      return;
    }
    const study = await lockStudy(tx, round.studyId);
    const participants = await tx.getRepository(RoundParticipantEntity).find({ where: { roundId: round.id } });
    for (const [siloId, message] of aggregate.unusable) {
      const failure = { code: 'UPDATE_CORRUPTED', message };
      await tx
        .getRepository(RoundParticipantEntity)
        .update(
          { roundId: round.id, siloId },
          { status: 'failed', failure: failure as RoundParticipantEntity['failure'] },
        );
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
      await tx
        .getRepository(RoundEntity)
        .update(round.id, { status: 'open', closeClaim: null, closeClaimExpiresAt: null });
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
    tx: EntityManager,
    study: StudyEntity,
    round: RoundEntity,
    participants: RoundParticipantEntity[],
    decision: Exclude<CloseDecision, { outcome: 'not-due' }>,
    now: Date,
    effects: Effects,
    aggregate: Aggregate | null = null,
  ): Promise<void> {
    const rounds = tx.getRepository(RoundEntity);
    const studies = tx.getRepository(StudyEntity);
    const released = { closeClaim: null, closeClaimExpiresAt: null };
    const summary = summaryOf(study, round, participants);
    if (aggregate?.screening) summary.screening = aggregate.screening;
    const waiting = participants.filter((p) => p.status === 'waiting');
    if (waiting.length > 0) {
      await tx
        .getRepository(RoundParticipantEntity)
        .update({ roundId: round.id, siloId: In(waiting.map((p) => p.siloId)), status: 'waiting' }, { status: 'late' });
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
        await studies.update(study.id, { pausedNextRound: next });
        event('study.round.held', { round: next.number, attempt: next.attempt, kind: next.kind, reason: 'paused' });
        return false;
      }
      effects.charges.push({ studyId: study.id, charges: await this.opener.open(tx, study, next) });
      return true;
    };
    const training = study.plan.training.rounds;
    switch (decision.outcome) {
      case 'complete-without-evaluation':
      case 'complete': {
        const reason = decision.outcome === 'complete' ? 'final evaluation complete' : decision.reason;
        await rounds.update(round.id, { status: 'closed', closedAt: now, closeReason: reason, summary, ...released });
        const ended =
          decision.outcome === 'complete' ? `completed ${training} rounds` : `completed ${training} rounds; ${reason}`;
        await studies.update(study.id, { status: 'completed', endedAt: now, endReason: study.endReason ?? ended });
        event('round.closed', { round: round.number, kind: 'evaluate', summary });
        event('study.completed', {
          finalModelHash: round.modelHash,
          evaluation: decision.outcome === 'complete' ? summary.evaluation : null,
        });
        return;
      }
      case 'fail-too-few-silos':
        await failStudy(tx, study, round, decision.reason);
        event('study.failed', { reason: 'too few silos remain', round: round.number });
        return;
      case 'short': {
        const blocked = round.kind === 'train' ? await this.budgetBlocks(tx, study, round.number) : null;
        const retried = { status: 'retried' as const, closedAt: now, closeReason: decision.why, summary, ...released };
        if (blocked) {
          // Silos that uploaded in the failed attempt spent privacy: a retry may no longer fit the budget.
          await rounds.update(round.id, retried);
          await studies.update(study.id, { endReason: blocked });
          const kind = 'evaluate';
          await openNext({ number: round.number, attempt: round.attempt + 1, kind, modelHash: round.modelHash });
          event('privacy.budget.reached', { round: round.number, reason: blocked });
        } else if (decision.retryAllowed) {
          await rounds.update(round.id, retried);
          const { number, kind, modelHash } = round;
          await openNext({ number, attempt: round.attempt + 1, kind, modelHash });
          event('round.retried', { round: round.number, attempt: round.attempt, reason: decision.why });
        } else {
          await failStudy(tx, study, round, `${decision.why}; no retries left`);
          event('study.failed', { reason: decision.why });
        }
        return;
      }
      case 'aggregate': {
        if (!aggregate) throw new Error('a round is aggregated only under a claim');
        summary.aggregationTrace = aggregate.trace;
        await rounds.update(round.id, {
          status: 'closed',
          closedAt: now,
          closeReason: waiting.length ? `deadline: ${waiting.length} silo(s) late` : 'all silos reported',
          resultModelHash: aggregate.resultHash,
          summary,
          ...released,
        });
        await studies.update(study.id, {
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
            await studies.update(study.id, { endReason: blocked });
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
   * Why a stored update cannot be aggregated (missing, unreadable, or bytes that no longer hash to its name), or null.
   * Checked before the round reads any of them in blocks (ranged reads are not checked), so bad bytes are never
   * averaged into the model; every store's `get` verifies (blob-store-contract.test-util.ts).
   */
  private async storedUpdateProblem(hash: string): Promise<string | null> {
    try {
      // One SHA-256 pass over ranged reads of 4 MiB. Reading each update whole (`get`) measured ~10× slower at 64 ×
      // 10M parameters (a fresh 40 MB buffer per update), the streamed `verify` slower still through a busy event
      // loop (docs/benchmarks.md §13). On a mismatch the store's own verified read reports it to the audit trail and
      // throws BlobIntegrityError.
      if ((await this.storedHash(hash)) !== hash) await this.blobs.get(hash);
      return null;
    } catch (err) {
      // BlobIntegrityError names the hash the bytes now have.
      if (err instanceof BlobIntegrityError) return `is corrupted on disk (its bytes hash to ${err.actualHash})`;
      return `cannot be read (${(err as Error).message})`;
    }
  }

  /**
   * SHA-256 of a stored blob's bytes, read in ranges of VERIFY_READ_BYTES and hashed on a worker thread
   * (OffThreadSha256): the next range is read while the last is hashed, and the event loop stays free for uploads.
   */
  private async storedHash(hash: string): Promise<string> {
    const size = await this.blobs.size(hash);
    const digest = new OffThreadSha256();
    try {
      for (let at = 0; at < size; at += VERIFY_READ_BYTES) {
        const bytes = await this.blobs.readRange(hash, at, Math.min(size, at + VERIFY_READ_BYTES));
        await digest.ready();
        digest.update(bytes);
      }
      return await digest.digest();
    } finally {
      digest.dispose();
    }
  }

  /**
   * The plan's aggregator (and screening) over the reported updates (round-aggregation.ts), then one server
   * optimizer step on the aggregate delta. Under SCAFFOLD the aggregate's second half is the mean control delta: the
   * control variate steps by |S|/N of it (S the silos aggregated, N those asked) and is stored as a blob (ADR 0019).
   */
  private async aggregate(
    study: StudyEntity,
    round: RoundEntity,
    reported: RoundParticipantEntity[],
    participants: number,
  ): Promise<
    | Extract<RoundAggregationOutcome, { outcome: 'too-few-after-exclusion' }>
    | (Extract<RoundAggregationOutcome, { outcome: 'aggregated' }> & {
        weights: Float32Array;
        stateHash: string;
        controlVariateHash: string | null;
      })
  > {
    const global = float32FromBytes(await this.blobs.get(round.modelHash));
    const outcome = await aggregateRoundUpdates(this.blobs, {
      plan: study.plan,
      global,
      previousGlobal: study.plan.screening ? await this.previousGlobal(round) : null,
      updates: reported.flatMap((p) =>
        p.updateHash ? [{ siloId: p.siloId, hash: p.updateHash, l2Norm: p.l2Norm, numExamples: p.numExamples }] : [],
      ),
      participants,
      mechanism: this.ledger.mechanismOf(study.planHash, study.plan),
      budget: {
        budgetBytes: this.config.aggregationMemory,
        blockParameters: this.config.aggregationBlockParameters,
        ...(this.config.aggregationThreads === 'auto' ? {} : { sumThreads: this.config.aggregationThreads }),
      },
    });
    if (outcome.outcome !== 'aggregated') return outcome;
    const optimizer = serverOptimizerFor(study.plan, global.length);
    if (study.optimizerStateHash) optimizer.restoreState(await this.blobs.get(study.optimizerStateHash));
    const m = global.length;
    const scaffold = study.plan.training.algorithm === 'scaffold';
    const step = optimizer.step(global, scaffold ? outcome.delta.subarray(0, m) : outcome.delta);
    const stateHash = await this.blobs.put(optimizer.serializeState());
    const trace: TraceEntry[] = [...outcome.trace, { record: { ...step.trace } }];
    let controlVariateHash: string | null = null;
    if (scaffold) {
      const control = study.controlVariateHash
        ? float32FromBytes(await this.blobs.get(study.controlVariateHash))
        : new Float32Array(m);
      const aggregated = outcome.aggregated.length;
      const next = serverControlStep(control, outcome.delta.subarray(m), aggregated, participants);
      controlVariateHash = await this.blobs.put(float32Bytes(next));
      trace.push({
        record: {
          step: 'scaffold-control-variate',
          rule: 'c += |S|/N · mean Δc_i',
          aggregated,
          asked: participants,
          from: study.controlVariateHash,
          to: controlVariateHash,
        },
      });
    }
    return { ...outcome, trace, weights: step.weights, stateHash, controlVariateHash };
  }

  /** The global model of the previous training round (null in round 1): screening's previous update is the change. */
  private async previousGlobal(round: RoundEntity): Promise<Float32Array | null> {
    if (round.number <= 1) return null;
    const previous = await this.db
      .getRepository(RoundEntity)
      .findOne({ where: { studyId: round.studyId, number: round.number - 1, status: 'closed' } });
    return previous ? float32FromBytes(await this.blobs.get(previous.modelHash)) : null;
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
}

function lockStudy(tx: EntityManager, id: string): Promise<StudyEntity> {
  return tx.getRepository(StudyEntity).findOneOrFail({ where: { id }, lock: { mode: 'pessimistic_write' } });
}

function rulesOf(study: StudyEntity) {
  const { minSilosPerRound, maxRoundRetries } = study.plan.participation;
  return { minSilosPerRound, maxRoundRetries, rounds: study.plan.training.rounds };
}

/** The round's figures as recorded at its close. */
function summaryOf(study: StudyEntity, round: RoundEntity, participants: RoundParticipantEntity[]): RoundSummary {
  const reported = participants.filter((p) => p.status === 'uploaded' || p.status === 'evaluated');
  return {
    reported: reported.length,
    participants: participants.length,
    // Only plans that release the record counts have them (release.trainingExamples 'exact').
    totalExamples:
      study.plan.release.trainingExamples === 'exact' && round.kind === 'train'
        ? reported.reduce((a, p) => a + (p.numExamples ?? 0), 0)
        : null,
    evaluation: summarizeEvaluations(reported.flatMap((p) => (p.evaluation ? [p.evaluation] : []))),
  };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}
