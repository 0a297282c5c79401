export { PRIVACY_AUDIT_DEFAULTS, type PrivacyAuditFlags } from './privacy-audit-flags';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { selectBackend } from '@tessera/ml';
import { AgentError, AgentErrorCode } from '../agent.error';
import { CANARY_KINDS, type CanaryKind } from './audit-canary.util';
import { heartDiseaseAuditPlan, underNoisedPlan } from './audit-plan.util';
import type { PrivacyAuditFlags } from './privacy-audit-flags';
import {
  MAX_AUDIT_RUNS,
  MIN_AUDIT_RUNS,
  runPrivacyAudit,
  type PrivacyAuditResult,
  type ScoreSummary,
} from './privacy-audit';

export interface PrivacyAuditRequest {
  dataFile: string;
  runsPerWorld: number;
  canary: CanaryKind;
  targetEpsilon: number;
  samplingRate: number;
  confidence: number;
  positiveControl: boolean;
  jsonFile: string | null;
}

function usage(message: string): never {
  throw new AgentError(AgentErrorCode.USAGE, message);
}

function numberFlag(text: string, name: string, ok: (v: number) => boolean, expected: string): number {
  const value = text.trim() === '' ? NaN : Number(text);
  if (!Number.isFinite(value) || !ok(value)) usage(`--${name} must be ${expected} (got "${text}")`);
  return value;
}

/** Checks the flags; every mistake is a USAGE error (exit code 2) naming the flag. */
export function parsePrivacyAuditFlags(flags: PrivacyAuditFlags, env: NodeJS.ProcessEnv): PrivacyAuditRequest {
  const data = flags.data ?? env.TESSERA_DATA_FILE;
  if (data === undefined || data === '')
    usage('give the silo’s data file with --data <file.csv> (or TESSERA_DATA_FILE)');
  if (!(CANARY_KINDS as readonly string[]).includes(flags.canary)) {
    usage(`--canary must be one of ${CANARY_KINDS.join(', ')} (got "${flags.canary}")`);
  }
  return {
    dataFile: resolve(data),
    runsPerWorld: numberFlag(
      flags.runs,
      'runs',
      (v) => Number.isSafeInteger(v) && v >= MIN_AUDIT_RUNS && v <= MAX_AUDIT_RUNS,
      `an integer from ${MIN_AUDIT_RUNS} to ${MAX_AUDIT_RUNS} (runs with the canary, and as many without)`,
    ),
    canary: flags.canary as CanaryKind,
    targetEpsilon: numberFlag(flags.epsilon, 'epsilon', (v) => v > 0 && v <= 100, 'a number in (0, 100]'),
    samplingRate: numberFlag(flags.samplingRate, 'sampling-rate', (v) => v > 0 && v <= 1, 'a number in (0, 1]'),
    confidence: numberFlag(flags.confidence, 'confidence', (v) => v > 0 && v < 1, 'a number in (0, 1), e.g. 0.95'),
    positiveControl: flags.positiveControl ?? false,
    jsonFile: flags.json === undefined ? null : resolve(flags.json),
  };
}

function readData(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return usage(`the data file ${file} cannot be read${code ? ` (${code})` : ''}`);
  }
}

const f = (x: number, digits = 3) => x.toFixed(digits);
const scores = (s: ScoreSummary, digits: number) =>
  `mean ${f(s.mean, digits)}, sd ${f(s.sd, digits)}, range [${f(s.min, digits)}, ${f(s.max, digits)}] over ${s.runs} runs`;

/** The report in words: what ran, the scores, the test's counts, the certified bound and the claim. */
export function formatPrivacyAudit(r: PrivacyAuditResult): string {
  const a = r.audit;
  const m = r.mechanism;
  const digits = r.release === 'noisy-evaluation' ? 2 : 5;
  const above = a.direction === 'above' ? '≥' : '≤';
  const leak = a.epsilonLowerBound > r.claimedEpsilon;
  const lines = [
    `privacy audit of this agent's pipeline: the real task executor, ${r.runsPerWorld} runs with the canary and ${r.runsPerWorld} without (only the hub is simulated)`,
    `data: ${r.data}`,
    `mechanism run: DP-SGD, one round of ${m.steps} steps, σ ${f(m.noiseMultiplier, 4)} (relative to C = ${m.clipNorm}), sampling rate q ${m.samplingRate}` +
      (m.evaluationNoiseStddev === null ? '' : `; evaluation noise stddev ${f(m.evaluationNoiseStddev, 3)} counts`) +
      (r.positiveControl
        ? ` — POSITIVE CONTROL: noise calibrated for ε = ${f(r.pipelineEpsilon, 1)}, certified against the audited plan's claim`
        : ''),
    `canary (${r.canary.kind}, ${r.canary.split === 'train' ? 'training' : 'test'} split): ${r.canary.description}`,
    `released and scored: ${
      r.release === 'training-update'
        ? "the uploaded update, projected on the canary's normalised negative gradient at the base model"
        : "the noisy evaluation histograms: the count of the canary's cell"
    }`,
    `scores with the canary:    ${scores(r.scoresIn, digits)}`,
    `scores without the canary: ${scores(r.scoresOut, digits)}`,
    `test: "canary in" when score ${above} ${f(a.threshold, digits)} (chosen on the even-numbered runs); on the other ${a.counts.positives} + ${a.counts.negatives} runs ` +
      `${a.counts.falseNegatives} missed and ${a.counts.falsePositives} false alarms: FNR ≤ ${f(a.falseNegativeRateUpper, 4)}, FPR ≤ ${f(a.falsePositiveRateUpper, 4)} (Clopper–Pearson, each at ${f(a.perBoundConfidence * 100, 1)}%)`,
    `certified lower bound: ε ≥ ${f(a.epsilonLowerBound, 3)} at ${f(r.confidence * 100, 0)}% confidence (δ = ${r.delta.toExponential()})`,
    `claimed: ε = ${f(r.claimedEpsilon, 3)} (what the plan charges for these releases)`,
    leak
      ? r.positiveControl
        ? 'positive control: the audit detects the under-noised pipeline (bound above the claim), as it must'
        : 'LEAK: the certified lower bound is above the claimed ε: this pipeline leaks more than it charges for'
      : r.positiveControl
        ? 'positive control FAILED: the audit did not detect the under-noised pipeline; give it more runs'
        : 'no leak beyond the claim detected (the lower bound is at or below the claimed ε)',
    `time: ${f(r.wallTimeMs / 1000, 1)} s, ${f(r.perRunMs, 0)} ms per run`,
  ];
  return lines.join('\n');
}

/**
 * `tessera-agent privacy-audit`: runs the audit on the silo's own file and prints the report (and writes the full
 * result, with every run's score, as JSON with --json). The verdict is printed, not turned into an exit code: the
 * exit code is non-zero only for bad input.
 */
export async function privacyAuditCommand(
  flags: PrivacyAuditFlags,
  env: NodeJS.ProcessEnv,
  out: (text: string) => void,
  progress?: (text: string) => void,
): Promise<PrivacyAuditResult> {
  const request = parsePrivacyAuditFlags(flags, env);
  const text = readData(request.dataFile);
  await selectBackend();
  const plan = heartDiseaseAuditPlan({ targetEpsilon: request.targetEpsilon, samplingRate: request.samplingRate });
  let lastReport = 0;
  const result = await runPrivacyAudit({
    data: { text, name: basename(request.dataFile) },
    canary: request.canary,
    runsPerWorld: request.runsPerWorld,
    plan,
    ...(request.positiveControl ? { pipelinePlan: underNoisedPlan(plan) } : {}),
    confidence: request.confidence,
    onRun: (done, total) => {
      const now = Date.now();
      if (progress && (now - lastReport > 5000 || done === total)) {
        lastReport = now;
        progress(`privacy audit: ${done}/${total} runs\n`);
      }
    },
  });
  out(formatPrivacyAudit(result) + '\n');
  if (request.jsonFile !== null) {
    writeFileSync(request.jsonFile, JSON.stringify(result, null, 2) + '\n', { mode: 0o600 });
    out(`wrote ${request.jsonFile}\n`);
  }
  return result;
}
