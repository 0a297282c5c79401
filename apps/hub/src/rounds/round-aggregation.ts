import {
  aggregateRobust,
  aggregateRobustBlockwise,
  chooseAggregationVariant,
  decideNormBound,
  DigestMismatchException,
  fusedDpFedAvg,
  fusedFedAvg,
  l2Norm,
  scaleUpdate,
  screenUpdates,
  screenUpdatesBlockwise,
  ThreadedBlockSum,
  type AggregatedDelta,
  type AggregationChoice,
  type AggregationShape,
  type ScreeningOptions,
  type ScreeningReport,
} from '@tessera/aggregation';
import { latticeNoisySum, type PrivacyMechanism } from '@tessera/dp';
import { updateLengthOf, type RoundScreeningView, type StudyPlan } from '@tessera/protocol';
import type { BlobStore } from '../blobs/blob-store';
import { BlobUpdateReader } from './blob-update-reader';
import { aggregatorFor, payloadOfFrame } from './model-math';
import {
  aggregationChoiceOf,
  isRobust,
  screeningOptionsOf,
  screeningVariant,
  type AggregationBudget,
} from './plan-aggregation.util';
import { screeningView } from './round-screening.util';

/** One accepted update of the round, as stored (verified against its name before, or while, it is read). */
export interface StoredUpdate {
  readonly siloId: string;
  /** Its framed blob's name. */
  readonly hash: string;
  /** L2 norm the hub measured on receipt (null only on rows from before the column). */
  readonly l2Norm: number | null;
  readonly numExamples: number | null;
}

export interface RoundAggregationInput {
  readonly plan: StudyPlan;
  readonly global: Float32Array;
  /**
   * The global model of the previous training round (null in round 1): screening compares each update with the
   * previous global update, global − previousGlobal (the change the server applied last round).
   */
  readonly previousGlobal: Float32Array | null;
  /** In the order their traces and the screening report index them. */
  readonly updates: readonly StoredUpdate[];
  /** Silos asked for this round: DP-FedAvg's fixed denominator. */
  readonly participants: number;
  /** The plan's privacy mechanism: DP-FedAvg reads its clipping norm S and noise multiplier z. */
  readonly mechanism: Pick<PrivacyMechanism, 'clipNorm' | 'noiseMultiplier'> | null;
  readonly budget: AggregationBudget;
  /**
   * The updates have not been checked against their names: hash each one as the fused sum reads it and answer
   * 'corrupted' (no aggregate) if any read bytes do not hash to its name (ADR 0021). Only for rounds that
   * verifiesWhileReading accepts; any other round throws. Otherwise the caller verified every update first.
   */
  readonly verifyWhileReading?: boolean;
}

/** An update whose bytes, read for the aggregate, did not hash to its name. */
export interface ChangedUpdate {
  readonly siloId: string;
  readonly hash: string;
  /** SHA-256 of the bytes the sum read. */
  readonly actualHash: string;
}

/** One entry of a round summary's aggregation trace: never the updates' values. */
export type TraceEntry = { siloId?: string; siloIds?: string[]; record: object };

export type RoundAggregationOutcome =
  | {
      outcome: 'aggregated';
      /** The aggregate delta, for the server optimizer (under SCAFFOLD followed by the mean control delta). */
      delta: Float32Array;
      trace: TraceEntry[];
      /** Silos whose updates are in the aggregate. */
      aggregated: string[];
      /** Silos whose flagged updates were left out (the plan's screening.exclude). */
      excluded: string[];
      screening: RoundScreeningView | null;
    }
  | {
      /** Leaving the flagged updates out would leave fewer than the plan needs: nothing is aggregated. */
      outcome: 'too-few-after-exclusion';
      excluded: string[];
      screening: RoundScreeningView;
    }
  | {
      /** verifyWhileReading: these updates were read with other bytes than their names say; nothing aggregated. */
      outcome: 'corrupted';
      changed: ChangedUpdate[];
    };

/** How the round reads its updates: one at a time (FedAvg), all held at once, or blocks of every update. */
type Mode = 'streaming' | 'in-memory' | 'blockwise';

/**
 * The round's updates, read as the chosen mode needs them. In memory they are read (verified) once and kept for
 * every step; blockwise, steps read ranges through a BlobUpdateReader; FedAvg reads one whole update at a time.
 */
class RoundUpdates {
  private held: Float32Array[] | null = null;

  constructor(
    private readonly blobs: BlobStore,
    readonly stored: readonly StoredUpdate[],
    readonly length: number,
    readonly mode: Mode,
  ) {}

  /** Update k's values: from memory when held, else read whole from the store (verified against its name). */
  async payload(k: number): Promise<Float32Array> {
    if (this.held) return this.held[k]!;
    return this.read(k);
  }

  async all(indices: readonly number[]): Promise<Float32Array[]> {
    if (!this.held) {
      this.held = [];
      for (let k = 0; k < this.stored.length; k += 1) this.held.push(await this.read(k));
    }
    const held = this.held;
    return indices.map((k) => held[k]!);
  }

  reader(indices: readonly number[]): Promise<BlobUpdateReader> {
    return BlobUpdateReader.open(
      this.blobs,
      indices.map((k) => this.stored[k]!.hash),
      this.length,
    );
  }

  /** The updates' L2 norms: as measured on receipt, or computed where a row has none. */
  async norms(indices: readonly number[]): Promise<number[]> {
    const out: number[] = [];
    for (const k of indices) out.push(this.stored[k]!.l2Norm ?? l2Norm(await this.payload(k)));
    return out;
  }

  private async read(k: number): Promise<Float32Array> {
    const values = payloadOfFrame(await this.blobs.get(this.stored[k]!.hash));
    if (values.length !== this.length) {
      throw new Error(
        `the stored update ${this.stored[k]!.hash} holds ${values.length} values; the model has ${this.length}`,
      );
    }
    return values;
  }
}

/**
 * How this round runs within the budget, for its actual number of updates. A robust aggregator or screening that
 * fits in memory holds every update once for both; otherwise both go blockwise. FedAvg without screening streams,
 * as it always has. Throws MEMORY_BUDGET_EXCEEDED (the plan check's message) when even blockwise does not fit — the
 * budget was lowered after the plan was accepted; the round stays claimed until an operator raises it.
 */
function chooseMode(
  choice: AggregationChoice,
  screening: ScreeningOptions | null,
  shape: AggregationShape,
  previousUpdate: boolean,
  budget: AggregationBudget,
): { mode: Mode; bytes: number } {
  const robust = isRobust(choice) ? chooseAggregationVariant(choice, shape, budget.budgetBytes) : null;
  const screen = screening ? screeningVariant(shape, previousUpdate, budget.budgetBytes) : null;
  if (screening && !screen) {
    throw new Error(
      `screening ${shape.updates} updates × ${shape.parameters} parameters does not fit TESSERA_AGGREGATION_MEMORY`,
    );
  }
  if (!robust && !screen) return { mode: 'streaming', bytes: 0 };
  const bytes = Math.max(robust?.bytes ?? 0, screen?.bytes ?? 0);
  const inMemory = (robust?.variant ?? 'in-memory') === 'in-memory' && (screen?.variant ?? 'in-memory') === 'in-memory';
  return { mode: inMemory ? 'in-memory' : 'blockwise', bytes };
}

/** Parameter·updates from which a round's sum goes to worker threads when their number is not configured. */
const THREADS_MIN_WORK = 1 << 24;

/**
 * The fused sum's options for n updates of m values: the configured threads, else worker threads unless the round is
 * small (starting threads takes tens of milliseconds, seconds on a loaded machine; the heart-disease demo's 14
 * parameters sum on the calling thread, in steps of at most 8 × 262,144 parameters, about a millisecond).
 */
function sumOptions(budget: AggregationBudget, m: number, n: number): { threads?: number } {
  const threads = budget.sumThreads;
  if (typeof threads === 'number') return { threads };
  return m * n < THREADS_MIN_WORK ? { threads: 0 } : {};
}

/**
 * Whether aggregateRoundUpdates can check the round's updates against their names while it aggregates them
 * (verifyWhileReading): FedAvg or DP-FedAvg on the fused sum, which reads every update exactly once (DP-FedAvg: those
 * above the clipping norm twice, both reads hashed). The robust aggregators and screening read the updates in other
 * ways (whole, or blockwise more than once): their rounds are verified before they are aggregated, as before.
 */
export function verifiesWhileReading(
  plan: StudyPlan,
  budget: AggregationBudget,
  modelParameters: number,
  updates: number,
): boolean {
  const choice = aggregationChoiceOf(plan);
  if (isRobust(choice) || screeningOptionsOf(plan) !== null || budget.sumThreads === 'one-by-one') return false;
  // DP-FedAvg over norm-bounded updates adds one at a time (fusedDelta).
  if (plan.privacy.mode === 'dp-fedavg' && choice.normBound) return false;
  const m = updateLengthOf(plan, modelParameters);
  return ThreadedBlockSum.supported(m, sumOptions(budget, m, updates));
}

/**
 * FedAvg or DP-FedAvg over the `indices` updates with the fused SIMD sum (ThreadedBlockSum): blocks of up to eight
 * updates read from the blob store straight into the kernel's shared memory and summed by worker threads, each owning
 * a range of coordinates, so this (main) thread only issues reads. The same bits and trace as the one-by-one path
 * below. Null where it does not apply: no WebAssembly SIMD, the updates already held in memory (screening or a
 * robust aggregator in memory), DP-FedAvg over norm-bounded updates, or the budget asks for the one-by-one path.
 */
async function fusedDelta(
  updates: RoundUpdates,
  indices: readonly number[],
  choice: AggregationChoice,
  input: RoundAggregationInput,
): Promise<{ delta: Float32Array; trace: TraceEntry[] } | null> {
  const mechanism = input.plan.privacy.mode === 'dp-fedavg' ? input.mechanism : null;
  const unavailable = () => {
    // verifyWhileReading is asked only where verifiesWhileReading said the fused sum runs: fail rather than read
    // unverified bytes.
    if (input.verifyWhileReading) throw new Error('this round cannot verify its updates while it reads them');
    return null;
  };
  if (input.budget.sumThreads === 'one-by-one' || updates.mode === 'in-memory' || (mechanism && choice.normBound)) {
    return unavailable();
  }
  const sum = ThreadedBlockSum.create(updates.length, sumOptions(input.budget, updates.length, indices.length));
  if (!sum) return unavailable();
  try {
    const stored = indices.map((k) => updates.stored[k]!);
    const source = await updates.reader(indices);
    // The names the bytes read must hash to (the frame's prefix and header come from the reader's leadingBytes).
    const integrity = input.verifyWhileReading ? { expectedDigests: stored.map((u) => u.hash) } : {};
    // The example count is the weight only when the plan releases it (as aggregatorFor); else every update counts 1.
    const reported = stored.map((u) => u.numExamples ?? 1);
    const trace: TraceEntry[] = [];
    let result: AggregatedDelta;
    if (mechanism) {
      const dp = await fusedDpFedAvg(
        sum,
        source,
        reported,
        stored.map((u) => u.l2Norm),
        {
          clippingNorm: mechanism.clipNorm,
          noiseMultiplier: mechanism.noiseMultiplier,
          expectedSilos: input.participants,
        },
        (s, parameters) => latticeNoisySum(s, parameters),
        integrity,
      );
      dp.updateTrace.forEach((records, j) => {
        for (const record of records) trace.push({ siloId: stored[j]!.siloId, record: { ...record } });
      });
      result = dp;
    } else {
      const bounding = choice.normBound ? decideNormBound(await updates.norms(indices), choice.normBound) : null;
      if (bounding) {
        trace.push({ record: { ...bounding.trace } });
        bounding.updateTrace.forEach((record, j) => trace.push({ siloId: stored[j]!.siloId, record: { ...record } }));
      }
      const weighting = input.plan.release.trainingExamples === 'exact' ? 'weighted' : 'unweighted';
      result = await fusedFedAvg(sum, source, {
        weighting,
        weights: reported,
        ...(bounding ? { scales: bounding.factors } : {}),
        ...integrity,
      });
    }
    for (const record of result.trace) trace.push({ record: { ...record } });
    return { delta: result.delta, trace };
  } finally {
    await sum.close();
  }
}

/** FedAvg (or DP-FedAvg) over the `indices` updates, one at a time, each scaled first when the plan bounds norms. */
async function fedAvgDelta(
  updates: RoundUpdates,
  indices: readonly number[],
  choice: AggregationChoice,
  input: RoundAggregationInput,
): Promise<{ delta: Float32Array; trace: TraceEntry[] }> {
  const fused = await fusedDelta(updates, indices, choice, input);
  if (fused) return fused;
  const trace: TraceEntry[] = [];
  const aggregator = aggregatorFor(input.plan, updates.length, input.mechanism, input.participants);
  const bounding = choice.normBound ? decideNormBound(await updates.norms(indices), choice.normBound) : null;
  if (bounding) trace.push({ record: { ...bounding.trace } });
  for (const [j, k] of indices.entries()) {
    const stored = updates.stored[k]!;
    if (bounding) trace.push({ siloId: stored.siloId, record: { ...bounding.updateTrace[j]! } });
    const values = await updates.payload(k);
    const factor = bounding ? bounding.factors[j]! : 1;
    const update = factor < 1 ? scaleUpdate(values, factor) : values;
    // The weight counts only when the plan releases record counts (aggregatorFor then weights); else 1 each.
    for (const record of aggregator.add(update, stored.numExamples ?? 1)) {
      trace.push({ siloId: stored.siloId, record: { ...record } });
    }
  }
  const result = aggregator.finish();
  for (const record of result.trace) trace.push({ record: { ...record } });
  return { delta: result.delta, trace };
}

/** A robust aggregator over the `indices` updates, in memory or blockwise. */
async function robustDelta(
  updates: RoundUpdates,
  indices: readonly number[],
  choice: AggregationChoice,
  budget: AggregationBudget,
): Promise<{ delta: Float32Array; trace: TraceEntry[] }> {
  const siloIds = indices.map((k) => updates.stored[k]!.siloId);
  const result =
    updates.mode === 'in-memory'
      ? aggregateRobust(choice, await updates.all(indices))
      : await aggregateRobustBlockwise(choice, await updates.reader(indices), {
          norms: await updates.norms(indices),
          blockParameters: budget.blockParameters,
        });
  const trace: TraceEntry[] = [];
  result.updateTrace.forEach((records, j) => {
    for (const record of records) trace.push({ siloId: siloIds[j]!, record: { ...record } });
  });
  // Round-level records index the inputs (Krum's selection, the geometric median's coefficients): name them.
  for (const record of result.trace) trace.push({ siloIds, record: { ...record } });
  return { delta: result.delta, trace };
}

function deltaOf(
  updates: RoundUpdates,
  indices: readonly number[],
  choice: AggregationChoice,
  input: RoundAggregationInput,
): Promise<{ delta: Float32Array; trace: TraceEntry[] }> {
  return isRobust(choice)
    ? robustDelta(updates, indices, choice, input.budget)
    : fedAvgDelta(updates, indices, choice, input);
}

function subtract(a: Float32Array, b: Float32Array): Float32Array {
  if (a.length !== b.length) throw new Error(`models of ${a.length} and ${b.length} parameters`);
  return a.map((x, i) => x - b[i]!);
}

async function screen(
  updates: RoundUpdates,
  aggregate: Float32Array,
  previousUpdate: Float32Array | undefined,
  options: ScreeningOptions,
  budget: AggregationBudget,
): Promise<ScreeningReport> {
  const all = updates.stored.map((_, k) => k);
  const references = previousUpdate ? { aggregate, previousUpdate } : { aggregate };
  return updates.mode === 'blockwise'
    ? screenUpdatesBlockwise(await updates.reader(all), references, {
        ...options,
        blockParameters: budget.blockParameters,
      })
    : screenUpdates(await updates.all(all), references, options);
}

/**
 * Step 2 of a round's close (RoundCloser), with no transaction open: the plan's aggregator over the round's stored
 * updates, then screening of every update against the aggregate and the previous global update; when the plan
 * excludes flagged updates, the aggregate is computed again without them. Returns the aggregate DELTA: the server
 * optimizer steps once, on the final one. In memory or blockwise over the blob store as the budget allows.
 *
 * Exclusion never leaves a round below participation.minSilosPerRound (nor, since the plan check ties them, below
 * Krum's n > 2f + 2): the round is then not aggregated at all, and closes short.
 */
export async function aggregateRoundUpdates(
  blobs: BlobStore,
  input: RoundAggregationInput,
): Promise<RoundAggregationOutcome> {
  const choice = aggregationChoiceOf(input.plan);
  const screening = screeningOptionsOf(input.plan);
  // Values per update: the model's, twice under SCAFFOLD (the model delta, then the control delta; ADR 0019).
  const m = updateLengthOf(input.plan, input.global.length);
  const previousUpdate = input.previousGlobal ? subtract(input.global, input.previousGlobal) : undefined;
  const shape: AggregationShape = {
    updates: input.updates.length,
    parameters: m,
    blockParameters: input.budget.blockParameters,
    normsKnown: true,
  };
  const { mode, bytes } = chooseMode(choice, screening, shape, previousUpdate !== undefined, input.budget);
  if (input.verifyWhileReading && (isRobust(choice) || screening || mode !== 'streaming')) {
    throw new Error('this round cannot verify its updates while it reads them');
  }
  const updates = new RoundUpdates(blobs, input.updates, m, mode);
  const all = input.updates.map((_, k) => k);
  const siloIds = input.updates.map((u) => u.siloId);
  let first: { delta: Float32Array; trace: TraceEntry[] };
  try {
    first = await deltaOf(updates, all, choice, input);
  } catch (err) {
    // Only the fused sum checks digests, over `all` (no screening here): the source's positions are the updates'.
    if (!(err instanceof DigestMismatchException)) throw err;
    const changed = err.mismatches.map(({ update, actual }) => {
      const u = input.updates[update]!;
      return { siloId: u.siloId, hash: u.hash, actualHash: actual };
    });
    return { outcome: 'corrupted', changed };
  }
  const memory: TraceEntry[] =
    mode === 'streaming'
      ? []
      : [{ record: { step: 'memory', mode, bytes, budgetBytes: input.budget.budgetBytes, updates: all.length } }];
  if (!screening) {
    return {
      outcome: 'aggregated',
      ...first,
      trace: [...memory, ...first.trace],
      aggregated: siloIds,
      excluded: [],
      screening: null,
    };
  }
  const report = await screen(updates, first.delta, previousUpdate, screening, input.budget);
  const view = screeningView(report, siloIds);
  const excluded = report.excluded.map((k) => siloIds[k]!);
  if (excluded.length === 0) {
    return {
      outcome: 'aggregated',
      ...first,
      trace: [...memory, ...first.trace],
      aggregated: siloIds,
      excluded,
      screening: view,
    };
  }
  const kept = all.filter((k) => !report.excluded.includes(k));
  const needed = input.plan.participation.minSilosPerRound;
  if (kept.length < needed) {
    const notAggregated =
      `screening left out ${excluded.length} of ${all.length} updates; the ${kept.length} left are fewer than ` +
      `participation.minSilosPerRound = ${needed}, so the round was not aggregated`;
    return { outcome: 'too-few-after-exclusion', excluded, screening: { ...view, notAggregated } };
  }
  if (input.plan.privacy.mode === 'dp-fedavg') {
    // The plan check refuses exclusion under DP-FedAvg: a second noisy sum would be a second release.
    throw new Error('screening.exclude under dp-fedavg: refused by the plan check, never run');
  }
  const second = await deltaOf(updates, kept, choice, input);
  return {
    outcome: 'aggregated',
    delta: second.delta,
    trace: [...memory, ...second.trace],
    aggregated: kept.map((k) => siloIds[k]!),
    excluded,
    screening: view,
  };
}
