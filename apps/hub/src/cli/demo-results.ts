import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { PrivacyMechanism } from '@tessera/dp';
import { modelSpecOf, tabularSchemaOf, type FairnessView, type StudyPlan } from '@tessera/protocol';
import { fairnessOfRound } from '../reports/study-report';
import type { RoundView } from '../rounds/rounds-query.service';
import type { StudyPrivacyView } from '../studies/studies.controller';
import { pooledBaseline, type PooledBaseline } from './demo-baseline';
import type { DemoAdmin } from './demo-hub';
import { runVerifier } from './demo-processes';
import { DATA, HOSPITALS, type DemoSilo } from './demo-study';

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/**
 * The true test accuracy of the final model at each hospital. Under DP the hub only ever receives a noisy
 * evaluation; the demo, a simulation that holds all four files, measures the model itself: the parameters as the
 * hub exports them, each hospital's test split prepared with @tessera/ml exactly as its agent prepares it.
 */
async function trueAccuracy(
  plan: StudyPlan,
  parameters: Float32Array,
  files: Record<string, string>,
): Promise<Record<string, number>> {
  const ml = await import('@tessera/ml');
  await ml.selectBackend();
  const spec = ml.parseModelSpec(modelSpecOf(plan));
  const out: Record<string, number> = {};
  for (const [key, file] of Object.entries(files)) {
    const data = ml.prepareTabularData(readFileSync(join(DATA, file), 'utf8'), tabularSchemaOf(plan));
    out[key] = (await ml.evaluate(spec, parameters, data.test.x, data.test.y)).accuracy;
  }
  return out;
}

export interface AccuracyResults {
  /** True accuracy of the final model on each hospital's test split, and their unweighted mean. */
  perHospital: Record<string, number>;
  meanAccuracy: number;
  /** What the hub learned from the evaluation round (a noisy estimate under DP; null where nothing was released). */
  hubNoisy: boolean;
  hubPerHospital: Record<string, number | null>;
  hubMean: number | null;
  baseline: PooledBaseline;
  /** The fairness view of the final evaluation as the hub received it (report.ts fairnessOfRound); null without one. */
  fairness: FairnessView | null;
}

/**
 * The final model's true accuracy at each hospital, measured here on the model the hub exports, beside what the hub
 * itself learned from the evaluation round (a noisy DP estimate under DP), and the pooled baseline.
 */
export async function measureAccuracy(
  admin: DemoAdmin,
  studyId: string,
  plan: StudyPlan,
  silos: DemoSilo[],
): Promise<AccuracyResults> {
  const files = Object.fromEntries(HOSPITALS.map((h) => [h.key, h.file]));
  const parameters = await admin.api<Buffer>('GET', `/api/studies/${studyId}/model/parameters.f32`);
  const finalParameters = new Float32Array(new Uint8Array(parameters).buffer.slice(0));
  const perHospital = await trueAccuracy(plan, finalParameters, files);
  const rounds = await admin.api<RoundView[]>('GET', `/api/studies/${studyId}/rounds`);
  const evaluation = rounds.find((r) => r.kind === 'evaluate' && r.status === 'closed');
  const reportedOf = (s: { id: string }) => evaluation?.participants.find((p) => p.siloId === s.id)?.evaluation;
  const hubPerHospital = Object.fromEntries(silos.map((s) => [s.key, reportedOf(s)?.accuracy ?? null]));
  const hubValues = Object.values(hubPerHospital).filter((v): v is number => v !== null);
  return {
    perHospital,
    meanAccuracy: mean(Object.values(perHospital)),
    hubNoisy: silos.some((s) => reportedOf(s)?.noisy === true),
    hubPerHospital,
    hubMean: hubValues.length ? mean(hubValues) : null,
    baseline: await pooledBaseline(plan, DATA, files),
    fairness: evaluation ? fairnessOfRound(evaluation) : null,
  };
}

/** The administrator downloads the final model in both formats; paths relative to the working directory. */
export async function downloadModels(admin: DemoAdmin, studyId: string, root: string): Promise<Record<string, string>> {
  const modelDir = join(root, 'models');
  mkdirSync(modelDir, { recursive: true });
  const models: Record<string, string> = {};
  for (const file of ['model.json', 'weights.bin', 'model.onnx'] as const) {
    const body = await admin.api<unknown>('GET', `/api/studies/${studyId}/model/${file}`);
    const path = join(modelDir, file);
    writeFileSync(path, Buffer.isBuffer(body) ? body : JSON.stringify(body));
    models[file] = relative(process.cwd(), path);
  }
  return models;
}

/**
 * The compliance report (docs/audit.md): report.pdf and report.json through the API, then the offline verifier,
 * which must accept it. Paths relative to the working directory.
 */
export async function fetchVerifiedReports(
  admin: DemoAdmin,
  studyId: string,
  root: string,
  log: (line: string) => void,
): Promise<{ pdf: string; json: string }> {
  const reportDir = join(root, 'reports');
  mkdirSync(reportDir, { recursive: true });
  const reports = { pdf: join(reportDir, 'report.pdf'), json: join(reportDir, 'report.json') };
  for (const format of ['pdf', 'json'] as const) {
    // The exact bytes the hub signed.
    writeFileSync(reports[format], await admin.bytes(`/api/studies/${studyId}/report.${format}`, `report.${format}`));
    reports[format] = relative(process.cwd(), reports[format]);
  }
  log(`compliance report: ${reports.pdf}, ${reports.json}`);
  const verdict = await runVerifier(reports.json);
  log(`tessera-verify: ${verdict.out.split('\n')[0]}`);
  if (verdict.code !== 0) {
    throw new Error(`the compliance report does not verify (exit ${verdict.code}):\n${verdict.out}`);
  }
  return reports;
}

/** What one silo's data spent: the hub's own figure (its charges, or the silo's reports if larger) and the silo's. */
export interface SiloPrivacySpend {
  epsilon: number;
  reportedEpsilon: number | null;
  delta: number;
  unit: PrivacyMechanism['unit'];
  accountant: string;
  noiseMultiplier: number;
  clipNorm: number;
  samplingRate: number;
  stepsPerRound: number;
  rounds: number;
  evaluationReleases: number;
}

/** Each silo's spend from the hub's privacy ledger; null for a silo that spent nothing (or a plan without DP). */
export async function privacySpent(
  admin: DemoAdmin,
  studyId: string,
  silos: DemoSilo[],
): Promise<Record<string, SiloPrivacySpend | null>> {
  const ledger = await admin.api<StudyPrivacyView>('GET', `/api/studies/${studyId}/privacy`);
  const m = ledger.mechanism;
  return Object.fromEntries(
    silos.map((s) => {
      const b = ledger.budgets.find((x) => x.siloId === s.id);
      return [
        s.key,
        m && b && b.trainingRounds + b.evaluationReleases > 0
          ? {
              epsilon: b.epsilon,
              reportedEpsilon: b.reportedEpsilon,
              delta: m.delta,
              unit: m.unit,
              accountant: m.accountant,
              noiseMultiplier: m.noiseMultiplier,
              clipNorm: m.clipNorm,
              samplingRate: m.samplingRate,
              stepsPerRound: m.stepsPerRound,
              rounds: b.trainingRounds,
              evaluationReleases: b.evaluationReleases,
            }
          : null,
      ];
    }),
  );
}
