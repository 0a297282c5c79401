import { describe, expect, it } from 'vitest';
import type { DemoTable } from './demo-report';
import { fairnessView, type EvaluationMetrics } from '@tessera/protocol';
import { formatDemoSummary } from './demo-report';
import { secureAggregationCostOf } from './demo-run';

const exact = (accuracy: number): EvaluationMetrics => ({ loss: 0.4, accuracy, auc: 0.8, n: 30, positives: 10 });

const HOSPITALS = [
  { key: 'a', name: 'Hospital A' },
  { key: 'b', name: 'Hospital B' },
];

function table(overrides: Partial<DemoTable> = {}): DemoTable {
  return {
    study: { id: 'study-1', name: 'Study', planHash: 'f'.repeat(64), rounds: 10 },
    accuracy: { perHospital: { a: 0.8, b: 0.7 }, mean: 0.75 },
    hubEvaluation: { noisy: true, perHospital: { a: 0.81, b: null }, mean: 0.81 },
    noisyMeanAccuracy: 0.81,
    pooledBaseline: { perHospital: { a: 0.9, b: 0.6 }, mean: 0.75, epochs: 20 },
    gapToPooled: -0.0123,
    fairness: null,
    privacy: {
      mode: 'dp-sgd',
      releasedWithoutDp: [],
      perHospital: {
        a: {
          epsilon: 1,
          reportedEpsilon: null,
          delta: 1e-5,
          unit: 'record',
          accountant: 'rdp',
          noiseMultiplier: 9.1534,
          clipNorm: 1,
          samplingRate: 0.1,
          stepsPerRound: 50,
          rounds: 10,
          evaluationReleases: 1,
        },
        b: null,
      },
    },
    wallTimeMs: 90_000,
    trainingTimeMs: 61_000,
    phasesMs: { hub: 2_100, enrollment: 1_400, approvals: 900, rounds: 61_000, after: 24_600 },
    secureAggregationCost: null,
    wire: { connections: 12, bytes: 1_024_000, bytesPerRound: 102_400 },
    finalModelSha256: 'e'.repeat(64),
    models: { 'model.json': 'm/model.json', 'model.onnx': 'm/model.onnx' },
    reports: { pdf: 'r/report.pdf', json: 'r/report.json' },
    hubDataDir: 'demo/hub',
    ...overrides,
  };
}

describe("the demo's summary", () => {
  it('lists each hospital in the order given, with — where the hub received nothing, and the DP spend per silo', () => {
    const lines = formatDemoSummary(table(), HOSPITALS, 'pw').split('\n');
    expect(lines).toContain(`${'hospital'.padEnd(40)} federated  pooled   hub (noisy DP estimate)`);
    expect(lines).toContain(`${'Hospital A'.padEnd(40)} 0.800      0.900    0.810`);
    expect(lines).toContain(`${'Hospital B'.padEnd(40)} 0.700      0.600    —`);
    expect(lines).toContain(
      `${'Hospital A'.padEnd(40)} 1.0000  —        0.00001  record  9.153   1  0.1  500   1     rdp`,
    );
    expect(lines).toContain(`${'Hospital B'.padEnd(40)} (nothing spent)`);
    expect(lines).toContain('released without differential privacy: nothing');
    expect(lines).toContain(
      'federated − pooled: -1.2 points; 10 rounds in 61.0 s; whole demo 90.0 s (hub 2.1 s, enrollment 1.4 s, approvals 0.9 s, rounds 61.0 s, after 24.6 s)',
    );
    expect(lines.at(-2)).toBe(
      'Open the console on this data: TESSERA_DATA_DIR=demo/hub npm run hub   (sign in as admin / pw)',
    );
  });

  it("sums each agent's logged secure-aggregation cost over its rounds and shows it against training", () => {
    const out = [
      '2026-12-07T03:00:00.000Z Fed round 1: secure aggregation: masked input summed; unmasking request answered',
      '2026-12-07T03:00:00.001Z Fed round 1: secure aggregation computed for 12.5 ms (keys, shares, masking, answers; waiting not counted) against 250.0 ms of local training: 5.0%',
      '2026-12-07T03:00:01.000Z Fed round 2: secure aggregation computed for 7.5 ms (keys, shares, masking, answers; waiting not counted) against 150.0 ms of local training: 5.0%',
    ].join('\n');
    expect(secureAggregationCostOf(out)).toEqual({ computeMs: 20, trainingMs: 400, rounds: 2 });
    expect(secureAggregationCostOf('trained 5 local epoch(s)')).toBeNull();
    const lines = formatDemoSummary(
      table({ secureAggregationCost: { 'Hospital A': { computeMs: 20, trainingMs: 400, rounds: 2 } } }),
      HOSPITALS,
      'pw',
    ).split('\n');
    expect(lines).toContain(
      'secure aggregation at each agent (its computation ÷ its local training, 1 agents): Hospital A 5.0%',
    );
  });

  it('says plainly when the plan has no differential privacy, and what left the silos without it', () => {
    const text = formatDemoSummary(
      table({
        hubEvaluation: { noisy: false, perHospital: { a: 0.8, b: 0.7 }, mean: 0.75 },
        privacy: { mode: 'none', releasedWithoutDp: ['exact metrics', 'record counts'], perHospital: {} },
      }),
      HOSPITALS,
      'pw',
    );
    expect(text).toContain('hub (as reported)');
    expect(text).toContain('privacy: none (no differential privacy)');
    expect(text).not.toContain('privacy spent');
    expect(text).toContain('released without differential privacy: exact metrics; record counts');
  });

  it('shows the fairness view: worst, best, gap, and each hospital under the global, personalized and local models', () => {
    const fairness = fairnessView([
      { siloId: 'a', siloName: 'Hospital A', global: exact(0.8), personalized: exact(0.81), localBaseline: exact(0.7) },
      {
        siloId: 'b',
        siloName: 'Hospital B',
        global: exact(0.6),
        personalized: exact(0.75),
        localBaseline: exact(0.72),
      },
    ]);
    const lines = formatDemoSummary(table({ fairness }), HOSPITALS, 'pw').split('\n');
    expect(lines).toContain(
      'fairness (accuracy the hub received): worst Hospital B 0.600, best Hospital A 0.800, gap +20.0 points',
    );
    expect(lines).toContain(`${'Hospital B'.padEnd(40)} 0.600    0.750     +15.0   0.720   -12.0`);
    expect(lines).toContain('worst hospital: global 0.600, personalized 0.750; mean: global 0.700, personalized 0.780');
    expect(formatDemoSummary(table(), HOSPITALS, 'pw')).not.toContain('fairness');
  });
});
