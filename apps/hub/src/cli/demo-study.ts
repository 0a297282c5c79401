import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { StudyPlan } from '@tessera/protocol';
import type { EnrollmentIssued } from '../silos/silos.service';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';
import type { DemoAdmin } from './demo-hub';
import { REPO, runAgent } from './demo-processes';

/** The four hospitals of UCI Heart Disease, each a silo with its own file (libs/ml/data/heart-disease). */
export const HOSPITALS = [
  { key: 'cleveland', name: 'Cleveland Clinic Foundation', file: 'processed.cleveland.data' },
  { key: 'hungarian', name: 'Hungarian Institute of Cardiology', file: 'processed.hungarian.data' },
  { key: 'switzerland', name: 'University Hospitals Zurich and Basel', file: 'processed.switzerland.data' },
  { key: 'va', name: 'V.A. Medical Center Long Beach', file: 'processed.va.data' },
] as const;

export const DATA = join(REPO, 'libs/ml/data/heart-disease');

/** A hospital once enrolled: its silo id and the environment its agent runs with (state and data file). */
export interface DemoSilo {
  key: string;
  name: string;
  file: string;
  id: string;
  env: { TESSERA_STATE_DIR: string; TESSERA_DATA_FILE: string };
}

/** The demo's directory, emptied: every run starts from nothing. */
export function prepareDataDir(dataDir: string): string {
  const root = resolve(dataDir);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  return root;
}

/** Each hospital: registered by the administrator, enrolled by its own agent process with its own state. */
export function enrollSilos(admin: DemoAdmin, root: string): Promise<DemoSilo[]> {
  return Promise.all(
    HOSPITALS.map(async (h) => {
      const issued = await admin.api<EnrollmentIssued>('POST', '/api/silos', {
        name: h.name,
        contact: `it@${h.key}.example`,
      });
      const dir = join(root, 'silos', h.key);
      mkdirSync(join(dir, 'data'), { recursive: true });
      copyFileSync(join(DATA, h.file), join(dir, 'data', h.file));
      const env = { TESSERA_STATE_DIR: join(dir, 'state'), TESSERA_DATA_FILE: join(dir, 'data', h.file) };
      const enrolled = await runAgent(['enroll', '--bundle', issued.bundleText], env);
      if (enrolled.code !== 0) throw new Error(`${h.name}: enrollment failed: ${enrolled.out}`);
      return { ...h, id: issued.silo.id, env };
    }),
  );
}

/**
 * The demo's plan for these silos. Example-level DP-SGD: unit one patient record; σ derived from the target for the
 * whole study. The plan's release follows the privacy mode (defaultRelease): under DP only a noisy evaluation of
 * the final model and no record counts leave the silos; without DP exact metrics and counts, listed as released
 * without DP.
 */
/** The demo's optional additions to the heart-disease plan (docs/personalization.md). */
export interface DemoPlanOptions {
  /** plan.personalization: fine-tune the final model at each hospital for this many epochs. */
  personalizeEpochs?: number;
  /** plan.personalization.localBaseline: also train and evaluate a local-only model at each hospital. */
  localBaseline?: boolean;
  /** plan.personalization.method: 'fine-tune' (default) or 'select' (cross-validated choice, no DP). */
  personalizeMethod?: 'fine-tune' | 'select';
  /** plan.training.initSeed (the initial model and the shuffling); default the plan's 42. */
  seed?: number;
}

export function demoPlan(
  silos: DemoSilo[],
  privacy: string,
  epsilon: string,
  options: DemoPlanOptions = {},
): StudyPlan {
  if (privacy !== 'dp-sgd' && privacy !== 'none' && privacy !== 'distributed-dp') {
    throw new Error(`--privacy must be none, dp-sgd or distributed-dp, not ${String(privacy)}`);
  }
  const plan =
    privacy === 'distributed-dp'
      ? distributedDpPlan(silos, epsilon)
      : heartDiseasePlan(
          silos.map((s) => s.id),
          privacy === 'dp-sgd'
            ? {
                privacy: {
                  mode: 'dp-sgd',
                  unit: 'record',
                  targetEpsilon: Number(epsilon),
                  delta: 1e-5,
                  clipNorm: 1,
                  noiseMultiplier: 'derive',
                  samplingRate: 0.1,
                },
              }
            : {},
        );
  if (options.seed !== undefined) plan.training.initSeed = options.seed;
  if (options.personalizeEpochs !== undefined) {
    plan.personalization = {
      method: options.personalizeMethod ?? 'fine-tune',
      epochs: options.personalizeEpochs,
      ...(options.localBaseline ? { localBaseline: true } : {}),
    };
  } else if (options.localBaseline || options.personalizeMethod !== undefined) {
    throw new Error(
      `${options.localBaseline ? '--local-baseline' : '--personalize-method'} needs --personalize <epochs>`,
    );
  }
  return plan;
}

/** The demo's clip norm for silo-level DP: a little above the heart-disease update norms of the plan's rounds. */
export const DEMO_SILO_CLIP_NORM = 1;

/**
 * Silo-level DP under secure aggregation (`--privacy distributed-dp`): each hospital clips its update to C, quantises
 * it, adds its share of the distributed discrete Gaussian and masks it; the hub sees only the noisy sum. Threshold
 * t = 3 of 4 (every hospital needed per round, so the sum carries 4 shares where the accountant counts 3).
 */
function distributedDpPlan(silos: DemoSilo[], epsilon: string): StudyPlan {
  return heartDiseasePlan(
    silos.map((s) => s.id),
    {
      privacy: {
        mode: 'dp-fedavg',
        unit: 'silo',
        targetEpsilon: Number(epsilon),
        delta: 1e-5,
        clipNorm: DEMO_SILO_CLIP_NORM,
        noiseMultiplier: 'derive',
        noise: 'distributed',
      },
      secureAggregation: { threshold: 3, modulusBits: 32, clipNorm: DEMO_SILO_CLIP_NORM },
      participation: {
        minSilosPerRound: silos.length,
        roundDeadlineSeconds: 60,
        maxRoundRetries: 1,
        onSiloFailure: 'continue',
      },
      release: { evaluation: { mode: 'none' }, trainingExamples: 'none' },
    },
  );
}

/** Creates the study and submits it to the stewards. */
export async function createStudy(admin: DemoAdmin, plan: StudyPlan): Promise<StudyView> {
  const study = await admin.api<StudyView>('POST', '/api/studies', { plan });
  await admin.api('POST', `/api/studies/${study.id}/submit`);
  return study;
}

/**
 * Each data steward approves the exact plan hash at their own agent, independently of the others: all at once, as
 * enrollment does (the agents' daemons may already be running: they read the approvals file on every task).
 */
export async function approveStudy(study: StudyView, silos: DemoSilo[]): Promise<void> {
  await Promise.all(
    silos.map(async (s) => {
      const r = await runAgent(['studies', 'approve', study.id, '--plan-hash', study.planHash], s.env);
      if (r.code !== 0) throw new Error(`${s.name}: approval failed: ${r.out}`);
    }),
  );
}
