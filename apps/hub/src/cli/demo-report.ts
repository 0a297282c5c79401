import { releasedWithoutDp, type StudyPlan } from '@tessera/protocol';
import type { StudyView } from '../studies/studies.service';
import type { AccuracyResults, SiloPrivacySpend } from './demo-results';

/** The demo's result, as `--json` writes it (bench/e2e reads it). */
export interface DemoTable {
  study: { id: string; name: string; planHash: string; rounds: number };
  /** True accuracy of the final model on each hospital's test split (measured by the demo itself). */
  accuracy: { perHospital: Record<string, number>; mean: number };
  /** What the hub learned from the evaluation round: under DP a noisy estimate from the silos' noisy releases. */
  hubEvaluation: { noisy: boolean; perHospital: Record<string, number | null>; mean: number | null };
  noisyMeanAccuracy: number | null;
  pooledBaseline: { perHospital: Record<string, number>; mean: number; epochs: number };
  gapToPooled: number;
  privacy: { mode: string; releasedWithoutDp: string[]; perHospital: Record<string, SiloPrivacySpend | null> };
  wallTimeMs: number;
  trainingTimeMs: number;
  /**
   * Traffic on the hub's silo and enrollment listeners over the whole demo (enrollment, approvals, every round, the
   * evaluation and the agents' model downloads), TLS included, from the hub's metrics; per round = total ÷ rounds.
   */
  wire: { connections: number; bytes: number; bytesPerRound: number };
  finalModelSha256: string | null;
  models: Record<string, string>;
  /** Compliance report (docs/audit.md). */
  reports: { pdf: string; json: string };
  hubDataDir: string;
}

export interface DemoOutcome {
  study: StudyView;
  plan: StudyPlan;
  final: StudyView;
  accuracy: AccuracyResults;
  privacy: Record<string, SiloPrivacySpend | null>;
  models: Record<string, string>;
  reports: { pdf: string; json: string };
  wallMs: number;
  trainingMs: number;
  wire: { connections: number; bytes: number };
  hubDataDir: string;
}

export function demoTable(o: DemoOutcome): DemoTable {
  const { accuracy: a, plan } = o;
  return {
    study: { id: o.study.id, name: plan.name, planHash: o.study.planHash, rounds: plan.training.rounds },
    accuracy: { perHospital: a.perHospital, mean: a.meanAccuracy },
    hubEvaluation: { noisy: a.hubNoisy, perHospital: a.hubPerHospital, mean: a.hubMean },
    noisyMeanAccuracy: a.hubNoisy ? a.hubMean : null,
    pooledBaseline: { perHospital: a.baseline.perHospital, mean: a.baseline.meanAccuracy, epochs: a.baseline.epochs },
    gapToPooled: a.meanAccuracy - a.baseline.meanAccuracy,
    privacy: { mode: plan.privacy.mode, releasedWithoutDp: releasedWithoutDp(plan), perHospital: o.privacy },
    wallTimeMs: o.wallMs,
    trainingTimeMs: o.trainingMs,
    wire: { ...o.wire, bytesPerRound: Math.round(o.wire.bytes / plan.training.rounds) },
    finalModelSha256: o.final.currentModelHash,
    models: o.models,
    reports: o.reports,
    hubDataDir: o.hubDataDir,
  };
}

const pad = (s: string, n: number) => s.padEnd(n);
const figure = (v: number | null | undefined) => (v === null || v === undefined ? '—' : v.toFixed(3));

function privacyLines(t: DemoTable, hospitals: readonly { key: string; name: string }[]): string[] {
  if (t.privacy.mode === 'none') return ['privacy: none (no differential privacy)'];
  return [
    `${pad('privacy spent', 40)} ε (hub) ε (silo) δ       unit    σ       C  q    steps evals accountant`,
    ...hospitals.map((s) => {
      const p = t.privacy.perHospital[s.key];
      return p
        ? `${pad(s.name, 40)} ${p.epsilon.toFixed(4)}  ${p.reportedEpsilon === null ? '—     ' : p.reportedEpsilon.toFixed(4)}   ${p.delta}  ${p.unit}  ${p.noiseMultiplier.toFixed(3)}   ${p.clipNorm}  ${p.samplingRate}  ${p.stepsPerRound * p.rounds}   ${p.evaluationReleases}     ${p.accountant}`
        : `${pad(s.name, 40)} (nothing spent)`;
    }),
  ];
}

/**
 * The summary the demo prints last: accuracy per hospital (federated, pooled, the hub's view), privacy spent, what
 * left the silos without DP, timings, the model and how to open the console on the demo's data.
 */
export function formatDemoSummary(
  t: DemoTable,
  hospitals: readonly { key: string; name: string }[],
  adminPassword: string,
): string {
  const hubColumn = t.hubEvaluation.noisy ? 'hub (noisy DP estimate)' : 'hub (as reported)';
  const released = t.privacy.releasedWithoutDp;
  const lines = [
    '',
    'Accuracy of the final model on each hospital\'s test split: "federated" is its true accuracy, measured by this',
    `demo on the exported model; "${hubColumn}" is what the hub itself learned from the evaluation round.`,
    `${pad('hospital', 40)} ${pad('federated', 10)} ${pad('pooled', 8)} ${hubColumn}`,
    ...hospitals.map(
      (s) =>
        `${pad(s.name, 40)} ${pad(figure(t.accuracy.perHospital[s.key]), 10)} ${pad(figure(t.pooledBaseline.perHospital[s.key]), 8)} ${figure(t.hubEvaluation.perHospital[s.key])}`,
    ),
    `${pad('mean (unweighted)', 40)} ${pad(t.accuracy.mean.toFixed(3), 10)} ${pad(t.pooledBaseline.mean.toFixed(3), 8)} ${figure(t.hubEvaluation.mean)}`,
    '',
    ...privacyLines(t, hospitals),
    `released without differential privacy: ${released.length === 0 ? 'nothing' : released.join('; ')}`,
    '',
    `federated − pooled: ${(100 * t.gapToPooled).toFixed(1)} points; ${t.study.rounds} rounds in ${(t.trainingTimeMs / 1000).toFixed(1)} s; whole demo ${(t.wallTimeMs / 1000).toFixed(1)} s`,
    `on the wire (silo and enrollment listeners, TLS included): ${(t.wire.bytes / 1024).toFixed(0)} KiB in ${t.wire.connections} connections, ${(t.wire.bytesPerRound / 1024).toFixed(1)} KiB per round`,
    `final model sha256 ${t.finalModelSha256}`,
    `models: ${Object.values(t.models).join(', ')}`,
    '',
    `Open the console on this data: TESSERA_DATA_DIR=${t.hubDataDir} npm run hub   (sign in as admin / ${adminPassword})`,
    '',
  ];
  return lines.join('\n');
}
