import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendRecord, buildBundle, canonicalJson, generateSigningKey, publicKeyFingerprint } from '@tessera/audit';
import type { PrivacySpend, StudyPlan } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import type { StoredChainVerification } from '../audit/audit-verification.service';
import type { RoundView } from '../rounds/rounds-query.service';
import type { StudyView } from '../studies/studies.service';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { formatFigure, pdfText, renderReportPdf } from './report-pdf.util';
import { buildStudyReportSummary, NO_DP_STATEMENT, summaryJson, type ParticipantPrivacy } from './study-report';

const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';
const HASH = (c: string) => c.repeat(64);

function studyView(plan: StudyPlan): StudyView {
  return {
    id: 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa',
    name: plan.name,
    status: 'completed',
    planVersion: 2,
    planHash: HASH('e'),
    plan,
    privacyCost: null,
    participants: [A, B],
    currentModelHash: HASH('3'),
    endReason: null,
    createdAt: '2025-05-01T08:00:00.000Z',
    startedAt: '2025-05-01T09:00:00.000Z',
    endedAt: '2025-05-01T10:00:00.000Z',
    decisions: [
      {
        siloId: A,
        siloName: 'Ålesund Sykehus',
        decision: 'approve',
        planHash: HASH('e'),
        decidedAt: '2025-05-01T08:30:00.000Z',
        reason: null,
      },
      {
        siloId: B,
        siloName: 'Bergen Klinikk',
        decision: 'approve',
        planHash: HASH('e'),
        decidedAt: '2025-05-01T08:40:00.000Z',
        reason: null,
      },
    ],
  };
}

function participant(siloId: string, siloName: string, accuracy: number): RoundView['participants'][number] {
  return {
    siloId,
    siloName,
    status: 'uploaded',
    numExamples: 100,
    updateSha256: HASH('9'),
    trainLoss: 0.4,
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

function spend(round: number, epsilonCumulative: number): PrivacySpend {
  return {
    mechanism: 'dp-sgd',
    unit: 'record',
    noiseMultiplier: 1.1,
    clipNorm: 1,
    samplingRate: 0.01,
    steps: 500,
    delta: 1e-5,
    epsilonRound: 0.4,
    epsilonCumulative,
    accountant: `rdp-sampled-gaussian r${round}`,
  };
}

describe('buildStudyReportSummary', () => {
  it('states plainly that a study without DP has none', () => {
    const s = buildStudyReportSummary({
      study: studyView(heartDiseasePlan([A, B])),
      rounds: ROUNDS,
      privacy: [],
      verification: VERIFIED,
      keyId: HASH('a'),
    });
    expect(s.privacy).toEqual({ mode: 'none', statement: NO_DP_STATEMENT, perSilo: [] });
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

  it('sums steps and takes the last cumulative epsilon per silo for a DP study', () => {
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
    const privacy: ParticipantPrivacy[] = [
      { round: 2, attempt: 1, siloId: A, privacy: spend(2, 1.25) },
      { round: 1, attempt: 1, siloId: A, privacy: spend(1, 0.8) },
      { round: 1, attempt: 1, siloId: B, privacy: spend(1, 0.9) },
    ];
    const s = buildStudyReportSummary({
      study: studyView(plan),
      rounds: ROUNDS,
      privacy,
      verification: VERIFIED,
      keyId: HASH('a'),
    });
    expect(s.privacy).toMatchObject({ mode: 'dp-sgd', unit: 'record', targetEpsilon: 3, delta: 1e-5 });
    expect(s.privacy.perSilo).toEqual([
      expect.objectContaining({ siloName: 'Bergen Klinikk', steps: 500, epsilon: 0.9, updates: 1 }),
      expect.objectContaining({
        siloName: 'Ålesund Sykehus',
        mechanism: 'dp-sgd',
        noiseMultiplier: 1.1,
        clipNorm: 1,
        samplingRate: 0.01,
        steps: 1000,
        epsilon: 1.25,
        delta: 1e-5,
        unit: 'record',
        accountant: 'rdp-sampled-gaussian r2',
        updates: 2,
      }),
    ]);
  });
});

describe('renderReportPdf', () => {
  it('prints the summary, the privacy table and the key fingerprint from the bundle (pdftotext)', async () => {
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
    const key = generateSigningKey();
    const summary = buildStudyReportSummary({
      study: studyView(plan),
      rounds: ROUNDS,
      privacy: [{ round: 1, attempt: 1, siloId: A, privacy: spend(1, 1.2345678) }],
      verification: VERIFIED,
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
      expect(dpRow).toContain(formatFigure(1.2345678));
      expect(dpRow).toContain('1.1');
      expect(text).toContain('the protected unit is one patient record');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps text within what the built-in Helvetica can encode', () => {
    expect(pdfText('σ = 1.1, ε ≤ 3 — ok…')).toBe('sigma = 1.1, epsilon ? 3 - ok...');
    expect(pdfText('Zürich')).toBe('Zürich');
  });
});
