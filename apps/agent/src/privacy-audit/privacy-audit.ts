// The empirical privacy audit of the agent's own pipeline (docs/privacy.md, "Empirical audit"): the real TaskExecutor
// runs one round of a DP-SGD plan many times on a silo's file with a canary record and many times without it, and a
// distinguishing test on what left the silo yields a certified LOWER bound on ε (Jagielski, Ullman, Oprea, NeurIPS
// 2020; Nasr et al., IEEE S&P 2021), which must stay below the ε the silo's ledger charged for those releases.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bestThresholdAudit,
  type ThresholdAudit,
  chargedEpsilon,
  privacyMechanismOf,
  type PrivacyMechanism,
} from '@tessera/dp';
import { initialParameters, scoreHistograms, type LogisticRegressionSpec } from '@tessera/ml';
import {
  decodeUpdateFrame,
  float32Bytes,
  planHash,
  sha256Hex,
  type EvaluationPayload,
  type SiloStudy,
  type SiloTask,
  type StudyPlan,
} from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';
import { SiloPrivacyLedger } from '../privacy/silo-privacy-ledger';
import { TaskExecutor, type StepLine } from '../run/task-executor';
import { ApprovalStore } from '../state/approval-store';
import { ReceiptStore } from '../state/receipt-store';
import { ReleaseStore } from '../state/release-store';
import { modelSpecOf, tabularSchemaOf } from '../training/plan-mapping.util';
import { StudyDatasets } from '../training/study-datasets';
import { makeCanary, logisticGradient, withCanary, type Canary, type CanaryKind } from './audit-canary.util';
import { AuditHubTransport } from './audit-hub-transport';
import { DEFAULT_AUDIT_CONFIDENCE, heartDiseaseAuditPlan } from './audit-plan.util';

/** Fewer runs per world cannot split into a selection half and a certification half of two scores each. */
export const MIN_AUDIT_RUNS = 4;
export const MAX_AUDIT_RUNS = 100_000;

export interface PrivacyAuditOptions {
  /** The silo's data file as text (the hospital's CSV) and a name for the report. */
  readonly data: { readonly text: string; readonly name: string };
  readonly canary: CanaryKind;
  /** Runs with the canary, and as many without it. */
  readonly runsPerWorld: number;
  /** The plan whose claim is audited; default: the demo's heart-disease plan with one round (heartDiseaseAuditPlan). */
  readonly plan?: StudyPlan;
  /**
   * The plan the agent actually runs, when it differs from `plan`: the positive control (underNoisedPlan) runs a
   * weaker pipeline and is certified against `plan`'s claim. Must have the same schema and model.
   */
  readonly pipelinePlan?: StudyPlan;
  /** Joint confidence of the bound; default 0.95. */
  readonly confidence?: number;
  /** Where the per-run state directories go (default the OS temporary directory); each is removed after its run. */
  readonly workDir?: string;
  /** Called after each run: progress for the CLI. */
  readonly onRun?: (done: number, total: number) => void;
}

export interface ScoreSummary {
  readonly runs: number;
  readonly mean: number;
  readonly sd: number;
  readonly min: number;
  readonly max: number;
}

export interface PrivacyAuditResult {
  readonly data: string;
  readonly canary: { readonly kind: CanaryKind; readonly split: 'train' | 'test'; readonly description: string };
  /** What the adversary scores: the uploaded update, or the noisy evaluation histograms. */
  readonly release: 'training-update' | 'noisy-evaluation';
  readonly runsPerWorld: number;
  readonly confidence: number;
  /** δ of the audited plan: the bound is on ε of an (ε, δ) guarantee at this δ. */
  readonly delta: number;
  /** ε the audited plan charges for what one run released (privacyMechanismOf + chargedEpsilon). */
  readonly claimedEpsilon: number;
  /** ε the silo's ledger charged for the pipeline actually run (equal to the claim unless it is a positive control). */
  readonly pipelineEpsilon: number;
  readonly positiveControl: boolean;
  /** The pipeline's mechanism: σ (relative to C), C, q, steps per round, and the evaluation noise (counts). */
  readonly mechanism: {
    readonly noiseMultiplier: number;
    readonly clipNorm: number;
    readonly samplingRate: number;
    readonly steps: number;
    readonly evaluationNoiseStddev: number | null;
  };
  /** The test's releases and counts, see bestThresholdAudit: the bound is `audit.epsilonLowerBound`. */
  readonly audit: ThresholdAudit;
  readonly scoresIn: ScoreSummary;
  readonly scoresOut: ScoreSummary;
  /** Every run's score, in run order (for plots and re-analysis). */
  readonly rawScores: { readonly in: readonly number[]; readonly out: readonly number[] };
  readonly wallTimeMs: number;
  readonly perRunMs: number;
}

function usage(message: string): never {
  throw new AgentError(AgentErrorCode.USAGE, message);
}

function summary(scores: readonly number[]): ScoreSummary {
  const n = scores.length;
  const mean = scores.reduce((a, b) => a + b, 0) / n;
  const variance = scores.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, n - 1);
  return { runs: n, mean, sd: Math.sqrt(variance), min: Math.min(...scores), max: Math.max(...scores) };
}

function dpSgdMechanism(plan: StudyPlan, which: string): PrivacyMechanism {
  const m = privacyMechanismOf(plan);
  if (m === null || m.mechanism !== 'dp-sgd') {
    usage(`the ${which} plan must use DP-SGD (unit: one record): only then does one record have a claimed ε to audit`);
  }
  return m;
}

/** The study as the hub would list it to this silo (plan version 1), and the task of the audited release. */
function studyOf(plan: StudyPlan): SiloStudy {
  const studyId = '00000000-0000-4000-8000-00000000a0d1';
  return {
    studyId,
    status: 'running',
    planVersion: 1,
    planHash: planHash(studyId, 1, plan),
    plan,
    privacyCost: null,
    decision: null,
  };
}

/** What the adversary turns into one number per run: larger means "the canary was in". */
type Distinguisher = (released: { update: Float32Array | null; evaluation: EvaluationPayload | null }) => number;

/**
 * The white-box adversary of a training canary, who knows the file, the canary and the model the round starts from:
 * the score is the update's projection on the canary's normalised negative gradient at that model, −g/‖g‖. DP-SGD
 * moves the model by −lr·(clipped g)/B each time the canary is sampled, so with the canary in, the update leans that
 * way; clipping rescales g but keeps its direction.
 */
function updateDistinguisher(canary: Canary, spec: LogisticRegressionSpec, base: Float32Array): Distinguisher {
  const g = logisticGradient(spec, base, canary.x, canary.y);
  const length = Math.sqrt(g.reduce((a, v) => a + v * v, 0));
  if (!(length > 0)) usage('the canary has a zero gradient at the base model: it cannot move the update');
  const direction = g.map((v) => -v / length);
  return ({ update }) => {
    if (update === null || update.length !== direction.length) throw new Error('the run released no usable update');
    let s = 0;
    for (let i = 0; i < direction.length; i++) s += update[i]! * direction[i]!;
    return s;
  };
}

/**
 * The adversary of a held-out canary: the noisy count of the histogram cell the canary falls in (its true label, and
 * its score bin under the evaluated model); the canary adds exactly one to that count.
 */
async function evaluationDistinguisher(
  canary: Canary,
  spec: LogisticRegressionSpec,
  model: Float32Array,
  bins: number,
): Promise<Distinguisher> {
  const h = await scoreHistograms(spec, model, canary.x, Uint8Array.of(canary.y), bins);
  const cells = canary.y === 1 ? h.positives : h.negatives;
  const bin = cells.findIndex((c) => c === 1);
  return ({ evaluation }) => {
    if (evaluation === null || evaluation.kind !== 'noisy-histogram') {
      throw new Error('the run released no noisy evaluation');
    }
    return (canary.y === 1 ? evaluation.positives : evaluation.negatives)[bin]!;
  };
}

interface RunContext {
  study: SiloStudy;
  task: SiloTask;
  modelHash: string;
  modelBytes: Uint8Array;
  workDir: string;
}

interface RunRelease {
  update: Float32Array | null;
  evaluation: EvaluationPayload | null;
  charged: { trainingRounds: number; evaluationReleases: number };
}

/**
 * One run of the real agent code path on a fresh state directory: approval recorded for the plan's hash, the silo's
 * file read by StudyDatasets, the real ledger and release store, the real noise (CSPRNG-driven exact sampler). Only
 * the hub is in memory. Returns what left the silo and what the ledger charged for it.
 */
async function runOnce(ctx: RunContext, dataFile: string): Promise<RunRelease> {
  const root = mkdtempSync(join(ctx.workDir, 'run-'));
  const lines: StepLine[] = [];
  try {
    const approvals = new ApprovalStore(root);
    approvals.record(ctx.study.studyId, {
      planHash: ctx.study.planHash,
      planVersion: ctx.study.planVersion,
      decision: 'approve',
      decidedAt: new Date().toISOString(),
      decidedBy: 'steward',
    });
    const hub = new AuditHubTransport(ctx.study, ctx.modelHash, ctx.modelBytes);
    const ledger = new SiloPrivacyLedger(root, undefined);
    const executor = new TaskExecutor({
      transport: hub,
      approvals,
      receipts: new ReceiptStore(root),
      releases: new ReleaseStore(root),
      datasets: new StudyDatasets(() => readFileSync(dataFile, 'utf8')),
      privacy: ledger,
      log: (line) => lines.push(line),
    });
    const outcome = await executor.execute(ctx.task, ctx.study);
    if (outcome.kind !== 'uploaded' && outcome.kind !== 'evaluated') {
      const why = outcome.kind === 'failed' ? `${outcome.report.code}: ${outcome.report.message}` : outcome.reason;
      throw new AgentError(
        AgentErrorCode.USAGE,
        `the agent did not release anything for the audit run (${outcome.kind}: ${why}); its log: ${lines.map((l) => l.message).join(' | ')}`,
      );
    }
    let update: Float32Array | null = null;
    let evaluation: EvaluationPayload | null = null;
    if (outcome.kind === 'uploaded') {
      // Decoded from the bytes the hub received, not from the executor's return value.
      const decoded = decodeUpdateFrame(hub.uploads[hub.uploads.length - 1]!);
      update = decoded.payload;
      evaluation = decoded.header.evaluation;
    } else {
      evaluation = hub.evaluations[hub.evaluations.length - 1]?.evaluation ?? null;
    }
    return { update, evaluation, charged: ledger.counts(ctx.study.studyId) };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function checkOptions(options: PrivacyAuditOptions): number {
  const { runsPerWorld } = options;
  if (!(Number.isSafeInteger(runsPerWorld) && runsPerWorld >= MIN_AUDIT_RUNS && runsPerWorld <= MAX_AUDIT_RUNS)) {
    usage(`runs per world must be an integer from ${MIN_AUDIT_RUNS} to ${MAX_AUDIT_RUNS}; got ${String(runsPerWorld)}`);
  }
  const confidence = options.confidence ?? DEFAULT_AUDIT_CONFIDENCE;
  if (!(confidence > 0 && confidence < 1)) usage(`the confidence must be in (0, 1); got ${String(confidence)}`);
  return confidence;
}

/**
 * Runs the audit: `runsPerWorld` rounds of the real agent with the canary appended to the file and as many without,
 * alternating (so drift of the machine cannot line up with the world), scores each release with the white-box
 * distinguisher, and certifies a lower bound on ε with bestThresholdAudit (threshold chosen on even-indexed runs,
 * certified on odd-indexed ones, Clopper–Pearson at `confidence`). The claim is the audited plan's chargedEpsilon for
 * the releases the ledger charged in one run.
 */
export async function runPrivacyAudit(options: PrivacyAuditOptions): Promise<PrivacyAuditResult> {
  const confidence = checkOptions(options);
  const plan = options.plan ?? heartDiseaseAuditPlan();
  const pipelinePlan = options.pipelinePlan ?? plan;
  const claimed = dpSgdMechanism(plan, 'audited');
  const pipeline = dpSgdMechanism(pipelinePlan, 'pipeline');
  if (JSON.stringify(plan.schema) !== JSON.stringify(pipelinePlan.schema)) {
    usage('the pipeline plan must have the audited plan’s schema');
  }
  const spec = modelSpecOf(pipelinePlan);
  if (spec.kind !== 'logistic-regression') {
    usage('the audit’s distinguisher supports logistic-regression plans (its gradient is computed in closed form)');
  }
  const started = Date.now();
  const base = initialParameters(spec, pipelinePlan.training.initSeed);
  const canary = makeCanary(options.canary, options.data.text, tabularSchemaOf(pipelinePlan), spec, base);

  const evaluationRelease = pipelinePlan.release.evaluation;
  const heldOut = canary.split === 'test';
  if (heldOut && evaluationRelease.mode !== 'noisy') {
    usage('a held-out canary audits the noisy evaluation release, and this plan releases no noisy evaluation');
  }
  // The held-out canary's release: the base model's evaluation inside the update ('every' round) or the final
  // evaluation task ('final'); training canaries: the training task's update.
  const kind: SiloTask['kind'] =
    heldOut && evaluationRelease.mode === 'noisy' && evaluationRelease.rounds === 'final' ? 'evaluate' : 'train';
  const distinguisher = heldOut
    ? await evaluationDistinguisher(
        canary,
        spec,
        base,
        evaluationRelease.mode === 'noisy' ? evaluationRelease.scoreBins : 2,
      )
    : updateDistinguisher(canary, spec, base);

  const study = studyOf(pipelinePlan);
  const modelBytes = Uint8Array.from(float32Bytes(base));
  const modelHash = sha256Hex(modelBytes);
  const parent = options.workDir ?? tmpdir();
  mkdirSync(parent, { recursive: true });
  const workDir = mkdtempSync(join(parent, 'tessera-privacy-audit-'));
  try {
    const outFile = join(workDir, 'silo-without-canary.csv');
    const inFile = join(workDir, 'silo-with-canary.csv');
    writeFileSync(outFile, options.data.text, { mode: 0o600 });
    writeFileSync(inFile, withCanary(options.data.text, canary), { mode: 0o600 });
    const ctx: RunContext = {
      study,
      modelHash,
      modelBytes,
      workDir,
      task: {
        studyId: study.studyId,
        planVersion: study.planVersion,
        planHash: study.planHash,
        kind,
        round: 1,
        attempt: 1,
        modelHash,
        deadlineAt: new Date(Date.now() + 86_400_000).toISOString(),
        // A day: the executor skips tasks past their deadline, and the audit has no hub clock to race.
        deadlineInMs: 86_400_000,
      },
    };
    const scoresIn: number[] = [];
    const scoresOut: number[] = [];
    let charged: RunRelease['charged'] | null = null;
    const total = 2 * options.runsPerWorld;
    const runsStarted = Date.now();
    for (let i = 0; i < options.runsPerWorld; i++) {
      for (const world of ['in', 'out'] as const) {
        const released = await runOnce(ctx, world === 'in' ? inFile : outFile);
        // A run resolves through promises only; yielding to the event loop between runs lets timers, signals and a
        // test runner's messages through during a long audit.
        await new Promise((done) => setImmediate(done));
        if (charged === null) charged = released.charged;
        else if (
          charged.trainingRounds !== released.charged.trainingRounds ||
          charged.evaluationReleases !== released.charged.evaluationReleases
        ) {
          throw new Error('two audit runs were charged differently: the runs are not the same mechanism');
        }
        (world === 'in' ? scoresIn : scoresOut).push(distinguisher(released));
        options.onRun?.(scoresIn.length + scoresOut.length, total);
      }
    }
    const perRunMs = (Date.now() - runsStarted) / total;
    const audit = bestThresholdAudit(scoresIn, scoresOut, claimed.delta, confidence);
    return {
      data: options.data.name,
      canary: { kind: canary.kind, split: canary.split, description: canary.description },
      release: heldOut ? 'noisy-evaluation' : 'training-update',
      runsPerWorld: options.runsPerWorld,
      confidence,
      delta: claimed.delta,
      claimedEpsilon: chargedEpsilon(claimed, charged!.trainingRounds, charged!.evaluationReleases),
      pipelineEpsilon: chargedEpsilon(pipeline, charged!.trainingRounds, charged!.evaluationReleases),
      positiveControl: options.pipelinePlan !== undefined && options.pipelinePlan !== plan,
      mechanism: {
        noiseMultiplier: pipeline.noiseMultiplier,
        clipNorm: pipeline.clipNorm,
        samplingRate: pipeline.samplingRate,
        steps: pipeline.stepsPerRound,
        evaluationNoiseStddev: pipeline.evaluation?.noiseStddev ?? null,
      },
      audit,
      scoresIn: summary(scoresIn),
      scoresOut: summary(scoresOut),
      rawScores: { in: scoresIn, out: scoresOut },
      wallTimeMs: Date.now() - started,
      perRunMs,
    };
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}
