import { Inject, Injectable, Logger } from '@nestjs/common';
import { serverControlStep } from '@tessera/ml/server';
import { float32Bytes } from '@tessera/protocol';
import { BlobStore } from '../blobs/blob-store';
import { BlobIntegrityError } from '../blobs/blob-store.exception';
import { OffThreadSha256 } from '../blobs/off-thread-sha256';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import { PrivacyLedgerService } from '../privacy/privacy-ledger.service';
import { distributedNoiseTrace } from '../secagg/secagg-noise.util';
import { SecAggSessionsService } from '../secagg/secagg-sessions.service';
import type { RoundParticipantEntity } from '../study-state/round-participant.entity';
import type { RoundEntity } from '../study-state/round.entity';
import type { StudyEntity } from '../study-state/study.entity';
import { float32FromBytes, serverOptimizerFor } from './model-math';
import type { AggregationBudget } from './plan-aggregation.util';
import {
  aggregateRoundUpdates,
  verifiesWhileReading,
  type ChangedUpdate,
  type RoundAggregationOutcome,
  type TraceEntry,
} from './round-aggregation';
import { RoundsRepository } from './rounds.repository';

/** The aggregate computed outside the locks, with the exact inputs it was computed from. */
export interface Aggregate {
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
  screening: Aggregated['screening'];
}

type Aggregated = Extract<RoundAggregationOutcome, { outcome: 'aggregated' }>;

/** An aggregate that is not one: too few usable (or unexcluded) updates; step 3 decides what follows. */
export function noAggregate(
  unusable: Map<string, string>,
  screening: Pick<Aggregate, 'excluded' | 'screening'> = { excluded: [], screening: null },
): Aggregate {
  return { aggregated: [], unusable, resultHash: '', stateHash: '', controlVariateHash: null, trace: [], ...screening };
}

/** Bytes per ranged read when the closer verifies a stored update against its name. */
const VERIFY_READ_BYTES = 4 * 2 ** 20;

/**
 * Step 2 of a close (RoundCloser): the aggregate of a claimed round, computed with no transaction open and no lock
 * held. It reads the round's frozen inputs (a closing round accepts no report), checks each stored update against
 * its name, runs the plan's aggregator (or unmasks the secure sum) and the server optimizer, and stores the results
 * as blobs; it changes no row.
 */
/** Where a close's aggregation spent its time (RoundCloser logs it). */
export interface AggregationTiming {
  /** ms spent verifying stored updates before aggregating, or re-checking the ones that changed while read. */
  verifyMs: number;
  /** Set when the updates were hashed as they were summed (ADR 0021): no separate verifying pass. */
  whileReading?: boolean;
}

@Injectable()
export class RoundAggregator {
  private readonly logger = new Logger(RoundAggregator.name);

  constructor(
    private readonly repository: RoundsRepository,
    private readonly blobs: BlobStore,
    private readonly ledger: PrivacyLedgerService,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    private readonly secureAggregation: SecAggSessionsService,
  ) {}

  /**
   * Step 2, with no transaction open. The inputs cannot change meanwhile: a closing round accepts no report. An
   * accepted update whose stored bytes no longer match their name is never aggregated.
   *
   * FedAvg and DP-FedAvg rounds check the updates while they aggregate them (ADR 0021): the fused sum hashes every
   * update as it reads it, on its worker threads, and the aggregate is used only if every update read as its name.
   * An update read with other bytes is then checked whole by the store as before (which records a corrupted blob in
   * the audit trail), set aside, and the others aggregated again — the second pass only when something is wrong. A
   * failure of that pass (a missing or unreadable blob) falls back to the verify-first path, which names the update.
   * The robust aggregators and screening verify every update first, then aggregate (`timing.verifyMs` is that pass,
   * or the time spent re-checking changed updates; `timing.whileReading` says which path gave the aggregate).
   */
  async aggregateClaimed(roundId: string, timing: AggregationTiming): Promise<Aggregate> {
    const round = await this.repository.round(roundId);
    const study = await this.repository.study(round.studyId);
    if (study.plan.secureAggregation && round.kind === 'train') return this.aggregateSecurely(study, round);
    const participants = await this.repository.participantsOf(round.id);
    const uploaded = participants.filter((p) => p.status === 'uploaded' && p.updateHash);
    const unusable = new Map<string, string>();
    const needed = study.plan.participation.minSilosPerRound;
    let model: Float32Array | null = null;
    // Read once, and only for a round that has enough updates to aggregate.
    const globalModel = async () => (model ??= float32FromBytes(await this.blobs.get(round.modelHash)));
    const budget = this.budget();
    if (
      uploaded.length >= needed &&
      verifiesWhileReading(study.plan, budget, (await globalModel()).length, uploaded.length)
    ) {
      const global = await globalModel();
      for (;;) {
        const usable = uploaded.filter((p) => !unusable.has(p.siloId));
        // Too few left to aggregate: step 3 decides what follows (retry, budget, failure) with the set-asides.
        if (usable.length < needed) return noAggregate(unusable);
        let outcome: RoundAggregationOutcome;
        try {
          outcome = await this.deltaOf(study, round, global, usable, participants.length, budget, true);
        } catch (err) {
          // A blob missing, unreadable or not a frame of the model's length (or any other failure of the pass):
          // verify first, as the other plans do, which sets aside what cannot be used and names why — or meets the
          // same failure again and fails the close as before.
          this.logger.warn(
            `round ${round.number} attempt ${round.attempt}: aggregating while checking the stored updates failed ` +
              `(${(err as Error).message}); verifying them first`,
          );
          break;
        }
        if (outcome.outcome !== 'corrupted') {
          timing.whileReading = true;
          return this.finish(study, global, outcome, participants, unusable);
        }
        const checking = performance.now();
        for (const changed of outcome.changed) {
          unusable.set(changed.siloId, `the stored update ${changed.hash} ${await this.changedUpdateProblem(changed)}`);
        }
        timing.verifyMs += performance.now() - checking;
      }
    }
    const verifying = performance.now();
    for (const p of uploaded) {
      if (unusable.has(p.siloId)) continue;
      const problem = await this.storedUpdateProblem(p.updateHash!);
      if (problem !== null) unusable.set(p.siloId, `the stored update ${p.updateHash} ${problem}`);
    }
    timing.verifyMs += performance.now() - verifying;
    const usable = uploaded.filter((p) => !unusable.has(p.siloId));
    // Too few left to aggregate: step 3 decides what follows (retry, budget, failure) with the set-asides.
    if (usable.length < needed) return noAggregate(unusable);
    const global = await globalModel();
    const outcome = await this.deltaOf(study, round, global, usable, participants.length, budget, false);
    // Only a round that verifies while reading answers 'corrupted'.
    if (outcome.outcome === 'corrupted') throw new Error('a verified round reported corrupted updates');
    return this.finish(study, global, outcome, participants, unusable);
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

  /**
   * Why an update read with other bytes than its name says (while the round aggregated it) cannot be aggregated: the
   * store's check of the whole blob — a corrupted blob is recorded in the audit trail, as when the closer verifies
   * first — or, if the blob matches its name again when read whole, that its bytes changed while they were read.
   */
  private async changedUpdateProblem(changed: ChangedUpdate): Promise<string> {
    return (
      (await this.storedUpdateProblem(changed.hash)) ??
      `changed while the round read it (the bytes read hashed to ${changed.actualHash}; read again, they match ` +
        `its name)`
    );
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

  /** The hub's aggregation budget (TESSERA_AGGREGATION_MEMORY, _BLOCK_PARAMETERS, _THREADS). */
  private budget(): AggregationBudget {
    return {
      budgetBytes: this.config.aggregationMemory,
      blockParameters: this.config.aggregationBlockParameters,
      ...(this.config.aggregationThreads === 'auto' ? {} : { sumThreads: this.config.aggregationThreads }),
    };
  }

  /**
   * The plan's aggregator (and screening) over the reported updates (round-aggregation.ts): the aggregate delta, or
   * with `verifyWhileReading` the updates whose bytes did not hash to their names as they were read ('corrupted').
   */
  private async deltaOf(
    study: StudyEntity,
    round: RoundEntity,
    global: Float32Array,
    reported: RoundParticipantEntity[],
    participants: number,
    budget: AggregationBudget,
    verifyWhileReading: boolean,
  ): Promise<RoundAggregationOutcome> {
    return aggregateRoundUpdates(this.blobs, {
      plan: study.plan,
      global,
      previousGlobal: study.plan.screening ? await this.previousGlobal(round) : null,
      updates: reported.flatMap((p) =>
        p.updateHash ? [{ siloId: p.siloId, hash: p.updateHash, l2Norm: p.l2Norm, numExamples: p.numExamples }] : [],
      ),
      participants,
      mechanism: this.ledger.mechanismOf(study.planHash, study.plan),
      budget,
      verifyWhileReading,
    });
  }

  /**
   * The aggregate from the round's outcome: one server optimizer step on the aggregate delta, the new model stored.
   * Under SCAFFOLD the aggregate's second half is the mean control delta: the control variate steps by |S|/N of it
   * (S the silos aggregated, N those asked) and is stored as a blob (ADR 0019).
   */
  private async finish(
    study: StudyEntity,
    global: Float32Array,
    outcome: Exclude<RoundAggregationOutcome, { outcome: 'corrupted' }>,
    participants: RoundParticipantEntity[],
    unusable: Map<string, string>,
  ): Promise<Aggregate> {
    if (outcome.outcome === 'too-few-after-exclusion') return noAggregate(unusable, outcome);
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
      const next = serverControlStep(control, outcome.delta.subarray(m), aggregated, participants.length);
      controlVariateHash = await this.blobs.put(float32Bytes(next));
      trace.push({
        record: {
          step: 'scaffold-control-variate',
          rule: 'c += |S|/N · mean Δc_i',
          aggregated,
          asked: participants.length,
          from: study.controlVariateHash,
          to: controlVariateHash,
        },
      });
    }
    const { aggregated, excluded, screening } = outcome;
    const resultHash = await this.blobs.put(float32Bytes(step.weights));
    return { aggregated, unusable, resultHash, stateHash, controlVariateHash, trace, excluded, screening };
  }

  /** The global model of the previous training round (null in round 1): screening's previous update is the change. */
  private async previousGlobal(round: RoundEntity): Promise<Float32Array | null> {
    if (round.number <= 1) return null;
    const previous = await this.repository.closedRound(round.studyId, round.number - 1);
    return previous ? float32FromBytes(await this.blobs.get(previous.modelHash)) : null;
  }
}
