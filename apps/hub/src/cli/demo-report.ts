import { releasedWithoutDp, type FairnessView, type StudyPlan } from '@tessera/protocol';
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
  /**
   * The fairness view of the final evaluation as the hub received it: worst and best hospital under the global model,
   * their gap and, with --personalize, each hospital's personalized figure (and local-only baseline); null without a
   * final evaluation release.
   */
  fairness: FairnessView | null;
  gapToPooled: number;
  privacy: { mode: string; releasedWithoutDp: string[]; perHospital: Record<string, SiloPrivacySpend | null> };
  wallTimeMs: number;
  trainingTimeMs: number;
  /**
   * Where the wall time went, in order (ms): the hub's start (embedded database included), enrolling the agents,
   * creating the study and the stewards' approvals, the rounds (from the start to the study's end, evaluation
   * included), and what follows (accuracy measured by the demo, exports, reports).
   */
  phasesMs: { hub: number; enrollment: number; approvals: number; rounds: number; after: number };
  /**
   * Under secure aggregation, per hospital: the agent's computation for the protocol (keys, shares, masking, answers;
   * waiting not counted) and its local training, summed over its rounds, as the agent logged them. Null otherwise.
   */
  secureAggregationCost: Record<string, { computeMs: number; trainingMs: number; rounds: number }> | null;
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
  phasesMs: DemoTable['phasesMs'];
  secureAggregationCost: DemoTable['secureAggregationCost'];
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
    fairness: a.fairness,
    privacy: { mode: plan.privacy.mode, releasedWithoutDp: releasedWithoutDp(plan), perHospital: o.privacy },
    wallTimeMs: o.wallMs,
    trainingTimeMs: o.trainingMs,
    phasesMs: o.phasesMs,
    secureAggregationCost: o.secureAggregationCost,
    wire: { ...o.wire, bytesPerRound: Math.round(o.wire.bytes / plan.training.rounds) },
    finalModelSha256: o.final.currentModelHash,
    models: o.models,
    reports: o.reports,
    hubDataDir: o.hubDataDir,
  };
}

const pad = (s: string, n: number) => s.padEnd(n);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Per hospital, what secure aggregation cost its agent against its training (issue 16: at most 10%). */
function secureAggregationLines(t: DemoTable): string[] {
  if (!t.secureAggregationCost) return [];
  const parts = Object.entries(t.secureAggregationCost).map(
    ([name, c]) => `${name} ${((100 * c.computeMs) / c.trainingMs).toFixed(1)}%`,
  );
  return [
    `secure aggregation at each agent (its computation ÷ its local training, ${parts.length} agents): ${parts.join(', ')}`,
  ];
}

/** "hub 2.1 s, enrollment 1.0 s, …" */
function phaseLine(p: DemoTable['phasesMs']): string {
  return `hub ${seconds(p.hub)}, enrollment ${seconds(p.enrollment)}, approvals ${seconds(p.approvals)}, rounds ${seconds(p.rounds)}, after ${seconds(p.after)}`;
}
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

const points = (v: number | null) => (v === null ? '—' : `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}`);

/** The fairness lines of the final table (the hub's figures: noisy DP estimates under dp-sgd). */
export function fairnessLines(f: FairnessView | null): string[] {
  if (f === null) return [];
  const lines = [
    `fairness (${f.metric} the hub received${f.noisy ? ', noisy DP estimates' : ''}): worst ${f.worst ? `${f.worst.siloName} ${figure(f.worst.value)}` : '—'}, best ${f.best ? `${f.best.siloName} ${figure(f.best.value)}` : '—'}, gap ${points(f.gap)} points`,
  ];
  if (f.summary.personalized === null) return lines;
  lines.push(
    `${pad('hospital', 40)} ${pad('global', 8)} ${pad('personal', 9)} ${pad('gain', 7)} ${pad('local', 7)} global − local`,
    ...f.silos.map(
      (r) =>
        `${pad(r.siloName, 40)} ${pad(figure(r.global), 8)} ${pad(figure(r.personalized), 9)} ${pad(points(r.personalizationGain), 7)} ${pad(figure(r.localBaseline), 7)} ${points(r.changeFromBaseline)}`,
    ),
    `worst hospital: global ${figure(f.summary.global?.worst)}, personalized ${figure(f.summary.personalized.worst)}; mean: global ${figure(f.summary.global?.mean)}, personalized ${figure(f.summary.personalized.mean)}`,
  );
  return lines;
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
    ...fairnessLines(t.fairness),
    ...(t.fairness ? [''] : []),
    ...privacyLines(t, hospitals),
    `released without differential privacy: ${released.length === 0 ? 'nothing' : released.join('; ')}`,
    '',
    `federated − pooled: ${(100 * t.gapToPooled).toFixed(1)} points; ${t.study.rounds} rounds in ${(t.trainingTimeMs / 1000).toFixed(1)} s; whole demo ${(t.wallTimeMs / 1000).toFixed(1)} s (${phaseLine(t.phasesMs)})`,
    ...secureAggregationLines(t),
    `on the wire (silo and enrollment listeners, TLS included): ${(t.wire.bytes / 1024).toFixed(0)} KiB in ${t.wire.connections} connections, ${(t.wire.bytesPerRound / 1024).toFixed(1)} KiB per round`,
    `final model sha256 ${t.finalModelSha256}`,
    `models: ${Object.values(t.models).join(', ')}`,
    '',
    `Open the console on this data: TESSERA_DATA_DIR=${t.hubDataDir} npm run hub   (sign in as admin / ${adminPassword})`,
    '',
  ];
  return lines.join('\n');
}
