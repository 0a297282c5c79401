import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendRecord, buildBundle, canonicalJson, generateSigningKey, publicKeyFingerprint } from '@tessera/audit';
import { DEFAULT_RDP_ORDERS_DESCRIPTION, privacyMechanismOf } from '@tessera/dp';
import { releasedWithoutDp, type StudyPlan } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import type { StoredChainVerification } from '../audit/audit-verification.service';
import type { RoundView } from '../rounds/rounds-query.service';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { formatFigure, pdfText } from './report-pdf-layout.util';
import { renderReportPdf } from './report-pdf.util';
import { A, B, HASH, studyView } from './study-report-fixtures.test-util';
import { buildStudyReportSummary, summaryJson, verificationAtHead } from './study-report';
import { NO_DP_STATEMENT, roundSecureAggregation, type SiloPrivacyFigures } from './study-report-sections';

function participant(siloId: string, siloName: string, accuracy: number): RoundView['participants'][number] {
  return {
    siloId,
    siloName,
    status: 'uploaded',
    numExamples: 100,
    updateSha256: HASH('9'),
    evaluation: { loss: 0.5, accuracy, auc: null, n: 50, positives: 20 },
    failure: null,
    privacy: null,
  };
}

function round(number: number, kind: 'train' | 'evaluate', input: string, output: string | null): RoundView {
  return {
    number,
    attempt: 1,
    kind,
    status: 'closed',
    modelHash: input,
    resultModelHash: output,
    openedAt: `2025-05-01T09:0${number}:00.000Z`,
    deadlineAt: `2025-05-01T09:1${number}:00.000Z`,
    closedAt: `2025-05-01T09:0${number}:30.000Z`,
    closeReason: 'all reported',
    summary: null,
    participants: [participant(B, 'Bergen Klinikk', 0.75 + number / 100), participant(A, 'Ålesund Sykehus', 0.8125)],
  };
}

const ROUNDS = [
  round(1, 'train', HASH('1'), HASH('2')),
  round(2, 'train', HASH('2'), HASH('3')),
  round(3, 'evaluate', HASH('3'), null),
];

const VERIFIED: StoredChainVerification = {
  ok: true,
  verifiedAt: '2025-05-01T10:05:00.000Z',
  records: 42,
  headSeq: 42,
  headHash: HASH('4'),
  checkpoints: { total: 3, verified: 3 },
  firstBroken: null,
  problems: [],
};
/** The head of the report: the last record the verification saw. */
const HEAD = { seq: 42, hash: HASH('4'), checkpoints: 3 };

/** A record-level DP plan with a noisy evaluation of the final model (the demo's default release under DP). */
function dpPlan(): StudyPlan {
  const plan = heartDiseasePlan([A, B], {
    privacy: {
      mode: 'dp-sgd',
      unit: 'record',
      targetEpsilon: 3,
      delta: 1e-5,
      clipNorm: 1,
      noiseMultiplier: 1.1,
      samplingRate: 0.01,
    },
  });
  plan.training.rounds = 2;
  return plan;
}

function figures(
  siloId: string,
  trainingRounds: number,
  epsilon: number,
  reportedEpsilon: number | null,
): SiloPrivacyFigures {
  return { siloId, trainingRounds, evaluationReleases: 1, epsilon, reportedEpsilon, disagreements: 0 };
}

describe('buildStudyReportSummary', () => {
  it('states plainly that a study without DP has none', () => {
    const s = buildStudyReportSummary({
      study: studyView(heartDiseasePlan([A, B])),
      rounds: ROUNDS,
      mechanism: null,
      privacy: [],
      verification: VERIFIED,
      head: HEAD,
      keyId: HASH('a'),
    });
    expect(s.privacy).toEqual({ mode: 'none', statement: NO_DP_STATEMENT, perSilo: [] });
    // Without DP the plan releases the update, the record counts and exact metrics: each listed, in words.
    expect(s.releases.releasedWithoutDp).toEqual(releasedWithoutDp(heartDiseasePlan([A, B])));
    expect(s.releases.releasedWithoutDp.length).toBeGreaterThan(0);
    expect(s.releases.statement).toMatch(/^Released without differential privacy: the model update itself/);
    expect(s.models).toEqual({
      initial: HASH('1'),
      final: HASH('3'),
      perRound: [
        { round: 1, attempt: 1, input: HASH('1'), output: HASH('2') },
        { round: 2, attempt: 1, input: HASH('2'), output: HASH('3') },
        { round: 3, attempt: 1, input: HASH('3'), output: null },
      ],
    });
    expect(s.finalEvaluation).toMatchObject({ round: 3, modelHash: HASH('3') });
    expect(s.finalEvaluation!.perSilo.map((e) => [e.siloName, e.accuracy])).toEqual([
      ['Bergen Klinikk', 0.78],
      ['Ålesund Sykehus', 0.8125],
    ]);
    expect(s.participants).toEqual([
      { siloId: A, name: 'Ålesund Sykehus' },
      { siloId: B, name: 'Bergen Klinikk' },
    ]);
    // Plain JSON: canonicalizable (no undefined, no Date), so it can be signed.
    expect(() => canonicalJson(summaryJson(s))).not.toThrow();
  });

  it("states the accounting, each silo's hub and reported ε, and that nothing left without DP", () => {
    const plan = dpPlan();
    const m = privacyMechanismOf(plan)!;
    const s = buildStudyReportSummary({
      study: studyView(plan),
      rounds: ROUNDS,
      mechanism: m,
      privacy: [
        figures(A, 2, 1.25, 1.2),
        figures(B, 1, 0.9, null),
        { ...figures('33333333-3333-4333-8333-333333333333', 0, 0, null), evaluationReleases: 0 },
      ],
      verification: VERIFIED,
      head: HEAD,
      keyId: HASH('a'),
    });
    expect(s.releases).toMatchObject({
      releasedWithoutDp: [],
      statement: 'Released without differential privacy: nothing',
      trainingExamples: 'none',
      evaluation: { mode: 'noisy', rounds: 'final', scoreBins: 4 },
    });
    if (s.privacy.mode === 'none') throw new Error('a DP plan reported without DP');
    expect(s.privacy).toMatchObject({ mode: 'dp-sgd', unit: 'record', targetEpsilon: 3, delta: 1e-5 });
    expect(s.privacy.accounting).toEqual({
      accountant: m.accountant,
      orders: DEFAULT_RDP_ORDERS_DESCRIPTION,
      noiseMultiplier: 1.1,
      clipNorm: 1,
      samplingRate: 0.01,
      stepsPerRound: 500, // 5 local epochs × round(1/0.01)
      plannedRounds: plan.training.rounds,
      plannedSteps: 500 * plan.training.rounds,
      plannedEpsilon: m.plannedEpsilon,
      evaluation: { noiseStddev: m.evaluation!.noiseStddev, releases: 1, plannedEpsilon: m.evaluation!.plannedEpsilon },
    });
    // Silos without any charge or report are left out; the others in name order.
    expect(s.privacy.perSilo).toEqual([
      expect.objectContaining({
        siloName: 'Bergen Klinikk',
        trainingRounds: 1,
        steps: 500,
        hubEpsilon: 0.9,
        reportedEpsilon: null,
      }),
      expect.objectContaining({
        siloName: 'Ålesund Sykehus',
        mechanism: 'dp-sgd',
        noiseMultiplier: 1.1,
        clipNorm: 1,
        samplingRate: 0.01,
        trainingRounds: 2,
        stepsPerRound: 500,
        steps: 1000,
        evaluationReleases: 1,
        hubEpsilon: 1.25,
        reportedEpsilon: 1.2,
        delta: 1e-5,
        unit: 'record',
        accountant: m.accountant,
      }),
    ]);
    expect(() => canonicalJson(summaryJson(s))).not.toThrow();
  });

  it('marks noisy evaluations and keeps their missing loss', () => {
    const rounds = structuredClone(ROUNDS);
    for (const p of rounds[2]!.participants)
      p.evaluation = { loss: null, accuracy: 0.7, auc: 0.8, n: 31, positives: 12, noisy: true };
    const s = buildStudyReportSummary({
      study: studyView(dpPlan()),
      rounds,
      mechanism: privacyMechanismOf(dpPlan()),
      privacy: [],
      verification: VERIFIED,
      head: HEAD,
      keyId: HASH('a'),
    });
    expect(s.finalEvaluation!.perSilo.map((e) => [e.loss, e.noisy])).toEqual([
      [null, true],
      [null, true],
    ]);
    expect(s.rounds[0]!.evaluations.every((e) => !e.noisy)).toBe(true);
  });
});

describe('verificationAtHead', () => {
  it('states an intact chain up to the head the report covers, not up to records appended later', () => {
    const later: StoredChainVerification = { ...VERIFIED, records: 50, headSeq: 50, headHash: HASH('5') };
    expect(verificationAtHead(later, { seq: 42, hash: HASH('4'), checkpoints: 3 })).toEqual({
      ok: true,
      verifiedAt: VERIFIED.verifiedAt,
      records: 42,
      headSeq: 42,
      headHash: HASH('4'),
      checkpointsVerified: 3,
      checkpointsTotal: 3,
      firstBroken: null,
    });
  });

  it('states a broken chain as found, even when the break lies after the head', () => {
    const broken: StoredChainVerification = {
      ...VERIFIED,
      ok: false,
      records: 44,
      headSeq: 50,
      headHash: null,
      firstBroken: {
        code: 'HASH_MISMATCH' as StoredChainVerification['problems'][number]['code'],
        seq: 45,
        message: 'x',
      },
    };
    const line = verificationAtHead(broken, { seq: 42, hash: HASH('4'), checkpoints: 3 });
    expect(line).toMatchObject({ ok: false, records: 44, headSeq: 50, headHash: null });
    expect(line.firstBroken).toMatchObject({ seq: 45, code: 'HASH_MISMATCH' });
  });
});

describe('renderReportPdf', () => {
  it('prints the summary, the privacy table and the key fingerprint from the bundle (pdftotext)', async () => {
    const plan = dpPlan();
    const key = generateSigningKey();
    const summary = buildStudyReportSummary({
      study: studyView(plan),
      rounds: ROUNDS,
      mechanism: privacyMechanismOf(plan),
      privacy: [figures(A, 1, 1.2345678, 1.1111111)],
      verification: VERIFIED,
      head: HEAD,
      keyId: publicKeyFingerprint(key.publicKeyPem),
    });
    const record = appendRecord(null, {
      time: '2025-05-01T08:00:00.000Z',
      actor: { type: 'system', id: 'hub' },
      action: 'study.created',
    });
    const bundle = buildBundle({ records: [record], study: summaryJson(summary), signingKey: key.privateKeyPem });
    const pdf = await renderReportPdf(bundle);
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    const dir = mkdtempSync(join(tmpdir(), 'tessera-pdf-'));
    try {
      writeFileSync(join(dir, 'r.pdf'), pdf);
      const text = execFileSync('pdftotext', ['-layout', join(dir, 'r.pdf'), '-'], { encoding: 'utf8' });
      expect(text).toContain(HASH('e'));
      expect(text).toContain(`sha256:${bundle.hub.keyId}`);
      expect(text).toContain('Ålesund Sykehus');
      const dpRow = text.split('\n').find((l) => l.includes('Ålesund') && l.includes('dp-sgd'));
      expect(dpRow).toBeDefined();
      expect(dpRow).toContain(formatFigure(1.2345678)); // the hub's ε
      expect(dpRow).toContain(formatFigure(1.1111111)); // the silo's ε beside it
      expect(dpRow).toContain('500'); // steps over its one round
      expect(text).toContain('the protected unit is one patient record');
      const flat = text.replace(/\s+/g, ' ');
      expect(flat).toContain('Released without differential privacy: nothing');
      expect(flat).toContain(DEFAULT_RDP_ORDERS_DESCRIPTION);
      expect(flat).toContain('500 per round; 1000 in total over the 2 planned rounds');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lists what a study without DP released, in the PDF too', async () => {
    const key = generateSigningKey();
    const summary = buildStudyReportSummary({
      study: studyView(heartDiseasePlan([A, B])),
      rounds: ROUNDS,
      mechanism: null,
      privacy: [],
      verification: VERIFIED,
      head: HEAD,
      keyId: publicKeyFingerprint(key.publicKeyPem),
    });
    const record = appendRecord(null, {
      time: '2025-05-01T08:00:00.000Z',
      actor: { type: 'system', id: 'hub' },
      action: 'study.created',
    });
    const bundle = buildBundle({ records: [record], study: summaryJson(summary), signingKey: key.privateKeyPem });
    const pdf = await renderReportPdf(bundle);
    const dir = mkdtempSync(join(tmpdir(), 'tessera-pdf-'));
    try {
      writeFileSync(join(dir, 'r.pdf'), pdf);
      const text = execFileSync('pdftotext', ['-layout', join(dir, 'r.pdf'), '-'], { encoding: 'utf8' });
      const flat = text.replace(/\s+/g, ' ');
      for (const item of summary.releases.releasedWithoutDp) expect(flat).toContain(item);
      expect(flat).toContain('No differential privacy');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps text within what the built-in Helvetica can encode', () => {
    expect(pdfText('σ = 1.1, ε ≤ 3 — ok…')).toBe('sigma = 1.1, epsilon ? 3 - ok...');
    expect(pdfText('Zürich')).toBe('Zürich');
  });
});

describe('secure aggregation in the report', () => {
  const C = '33333333-3333-4333-8333-333333333333';
  const SECAGG = { threshold: 2, modulusBits: 24, clipNorm: 2.5 };
  const base = heartDiseasePlan([A, B, C]);
  const plan: StudyPlan = {
    ...base,
    participation: { ...base.participation, minSilosPerRound: 3 },
    secureAggregation: SECAGG,
  };
  /** The trace RoundCloser.aggregateSecurely stores: the secure sum, then the server step. */
  const trace = (summed: number): object[] => [
    {
      siloIds: [A, B, C].slice(0, summed),
      record: {
        step: 'secure-aggregation',
        protocol: 'SecAgg+',
        summed,
        weights: 'equal',
        clipNorm: 2.5,
        quantisationErrorBound: summed / 4096,
        individualUpdatesStored: false,
      },
    },
    { record: { step: 'server-optimizer', kind: 'fedavg' } },
  ];
  const input = () => ({
    study: studyView(plan),
    rounds: ROUNDS,
    mechanism: null,
    privacy: [],
    verification: VERIFIED,
    head: HEAD,
    keyId: HASH('a'),
    // Round 2 closed with two survivors; the evaluation round 3 has no secure sum.
    aggregationTraces: [
      { round: 1, attempt: 1, trace: trace(3) },
      { round: 2, attempt: 1, trace: trace(2) },
    ],
  });

  it("states each training round's masked inputs summed, that no update was stored, and the plan's block", () => {
    const s = buildStudyReportSummary(input());
    expect(s.rounds.map((r) => [r.round, r.secureAggregation?.summed ?? null])).toEqual([
      [1, 3],
      [2, 2],
      [3, null],
    ]);
    expect(s.rounds[1]!.secureAggregation).toEqual({
      protocol: 'SecAgg+',
      summed: 2,
      weights: 'equal',
      clipNorm: 2.5,
      quantisationErrorBound: 2 / 4096,
      individualUpdatesStored: false,
    });
    expect(s.secureAggregation).toMatchObject({
      protocol: 'SecAgg+',
      threshold: 2,
      neighbourCount: null,
      modulusBits: 24,
      clipNorm: 2.5,
      roundsSummed: 2,
    });
    expect(s.secureAggregation!.statement).toContain('threshold t = 2, the complete graph');
    expect(s.secureAggregation!.statement).toContain('modulo 2^24');
    expect(s.secureAggregation!.statement).toContain('No individual update was stored in any of the 2 training round');
    expect(() => canonicalJson(summaryJson(s))).not.toThrow();
  });

  it('states that each silo added its share of the noise under distributed DP, and only then', () => {
    const distributed: StudyPlan = {
      ...plan,
      privacy: {
        mode: 'dp-fedavg',
        unit: 'silo',
        targetEpsilon: 4,
        delta: 1e-5,
        clipNorm: 2.5,
        noiseMultiplier: 'derive',
        noise: 'distributed',
      },
      release: { evaluation: { mode: 'none' }, trainingExamples: 'none' },
    };
    const s = buildStudyReportSummary({
      ...input(),
      study: studyView(distributed),
      mechanism: privacyMechanismOf(distributed),
    });
    if (s.privacy.mode === 'none') throw new Error('a DP plan reported without DP');
    expect(s.privacy.statement).toContain(
      'The noise was added by each silo to its quantised update before masking (distributed discrete Gaussian, ' +
        'sized so that any t = 2 shares carry the charged noise): the hub never saw an update without noise.',
    );
    expect(s.releases.releasedWithoutDp).toEqual([]);
    const central = buildStudyReportSummary({
      ...input(),
      study: studyView(dpPlan()),
      mechanism: privacyMechanismOf(dpPlan()),
    });
    if (central.privacy.mode === 'none') throw new Error('a DP plan reported without DP');
    expect(central.privacy.statement).not.toContain('added by each silo');
  });

  it('names the neighbourhood, and says nothing of secure aggregation for a plan without it', () => {
    const withNeighbours = buildStudyReportSummary({
      ...input(),
      study: studyView({ ...plan, secureAggregation: { ...SECAGG, neighbourCount: 2 } }),
    });
    expect(withNeighbours.secureAggregation).toMatchObject({ neighbourCount: 2 });
    expect(withNeighbours.secureAggregation!.statement).toContain('2 neighbours per silo');
    const plain = buildStudyReportSummary({
      ...input(),
      study: studyView(heartDiseasePlan([A, B])),
      aggregationTraces: [],
    });
    expect(plain.secureAggregation).toBeNull();
    expect(plain.rounds.every((r) => r.secureAggregation === null)).toBe(true);
  });

  it('refuses a malformed stored entry by its round and field rather than misreport it', () => {
    const [sum] = trace(3) as [{ record: Record<string, unknown> }];
    expect(() => roundSecureAggregation([{ record: { ...sum.record, summed: '3' } }], '4.2')).toThrow(
      'round 4.2: the stored secure-aggregation trace entry has no valid summed',
    );
    expect(() => roundSecureAggregation([{ record: { ...sum.record, individualUpdatesStored: 'no' } }], '1.1')).toThrow(
      /no valid individualUpdatesStored/,
    );
    expect(() => roundSecureAggregation([sum, sum], '1.1')).toThrow(/2 secure sums, not one/);
    expect(roundSecureAggregation([{ record: { step: 'server-optimizer' } }], '1.1')).toBeNull();
  });

  it('prints the block and, per training round, the inputs summed and "no" stored updates in the PDF', async () => {
    const key = generateSigningKey();
    const summary = buildStudyReportSummary({ ...input(), keyId: publicKeyFingerprint(key.publicKeyPem) });
    const record = appendRecord(null, {
      time: '2025-05-01T08:00:00.000Z',
      actor: { type: 'system', id: 'hub' },
      action: 'study.created',
    });
    const bundle = buildBundle({ records: [record], study: summaryJson(summary), signingKey: key.privateKeyPem });
    const pdf = await renderReportPdf(bundle);
    const dir = mkdtempSync(join(tmpdir(), 'tessera-pdf-'));
    try {
      writeFileSync(join(dir, 'r.pdf'), pdf);
      const text = execFileSync('pdftotext', ['-layout', join(dir, 'r.pdf'), '-'], { encoding: 'utf8' });
      const flat = text.replace(/\s+/g, ' ');
      expect(flat).toContain('Secure aggregation');
      expect(flat).toContain('No individual update was stored in any of the 2 training round(s)');
      expect(flat).toContain('t = 2');
      expect(flat).toContain('2^24');
      expect(flat).toContain('C = 2.5');
      const lines = text.split('\n');
      const row = (n: string) => lines.find((l) => new RegExp(`^\\s*${n}\\s+closed\\s+\\d`).test(l));
      expect(row('1')).toMatch(/closed\s+3\s+equal\s+\S+\s+no\s*$/);
      expect(row('2')).toMatch(/closed\s+2\s+equal\s+\S+\s+no\s*$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
