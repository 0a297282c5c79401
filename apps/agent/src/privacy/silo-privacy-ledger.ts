import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { planLimitRefusal, privacySpendOf, type PrivacyMechanism } from '@tessera/dp';
import { epsilonForEvents, type SampledGaussianEvent } from '@tessera/dp/accountant';
import { type PrivacySpend } from '@tessera/protocol';
import { z } from 'zod';
import { AgentError, AgentErrorCode } from '../agent.error';
import { writeFileAtomic } from '../state/atomic-file.util';

/** The silo's own limit on what all studies together may spend on its data: (ε, δ), from its configuration. */
export interface PrivacyCap {
  epsilon: number;
  delta: number;
}

const LEDGER_FORMAT = 'tessera.silo-privacy-ledger/2';

/**
 * One charged event: a training round (a sampled Gaussian: σ relative to C, rate q, `steps` steps) or one noisy
 * evaluation release (a Gaussian on counts of sensitivity 1: σe in counts, q = 1, one step, clipNorm 1).
 * `trainingRounds`, `evaluationReleases` and `epsilonCumulative` are the study's figures after this charge.
 */
const Entry = z
  .object({
    studyId: z.string(),
    studyName: z.string(),
    round: z.number().int(),
    attempt: z.number().int(),
    /** 'personalization': the final fine-tuning (and local baseline) of plan.personalization, DP-SGD steps. */
    kind: z.enum(['training', 'evaluation', 'personalization']),
    /** The base model of a training round, or the evaluated model; null for entries from before format 2. */
    modelHash: z.string().nullable(),
    mechanism: z.enum(['dp-sgd', 'dp-fedavg']),
    unit: z.enum(['record', 'silo']),
    noiseMultiplier: z.number().positive(),
    clipNorm: z.number().positive(),
    samplingRate: z.number().gt(0).max(1),
    steps: z.number().int().min(1),
    delta: z.number(),
    trainingRounds: z.number().int().min(0),
    evaluationReleases: z.number().int().min(0),
    personalizations: z.number().int().min(0).optional(),
    epsilonRound: z.number(),
    epsilonCumulative: z.number(),
    accountant: z.string(),
    at: z.string(),
  })
  .strict();
export type LedgerEntry = z.infer<typeof Entry>;
const LedgerFile = z.object({ format: z.literal(LEDGER_FORMAT), entries: z.array(Entry) }).strict();

/** Format 1 (before noisy evaluation): every entry a training round, one per study, round and attempt. */
const EntryV1 = z.object({
  studyId: z.string(),
  studyName: z.string(),
  round: z.number().int(),
  attempt: z.number().int(),
  mechanism: z.enum(['dp-sgd', 'dp-fedavg']),
  unit: z.enum(['record', 'silo']),
  noiseMultiplier: z.number().positive(),
  clipNorm: z.number().positive(),
  samplingRate: z.number().gt(0).max(1),
  steps: z.number().int().min(1),
  delta: z.number(),
  epsilonRound: z.number(),
  epsilonCumulative: z.number(),
  accountant: z.string(),
  at: z.string(),
});
const LedgerFileV1 = z.object({ format: z.literal('tessera.silo-privacy-ledger/1'), entries: z.array(EntryV1) });

/**
 * What one more charge would add to a study: a training round, noisy evaluation releases (the final evaluation of a
 * personalizing plan releases one per model), the personalization's DP-SGD steps, or several of these.
 */
export interface ChargeRequest {
  trainingRounds: 0 | 1;
  evaluationReleases: number;
  personalizations?: 0 | 1;
}

/** Why the agent refuses a charge: the approved plan's limits, or the silo's own cap. */
export interface ChargeRefusal {
  code: 'PLAN_LIMIT_REACHED' | 'PRIVACY_CAP_REACHED';
  message: string;
}

/** Thrown by charge() when a refusal check was skipped or the ledger changed meanwhile: nothing was charged. */
export class ChargeRefusedError extends Error {
  constructor(readonly refusal: ChargeRefusal) {
    super(refusal.message);
    this.name = 'ChargeRefusedError';
  }
}

export interface StudyBudgetLine {
  studyId: string;
  studyName: string;
  mechanism: string;
  unit: string;
  /** Training rounds charged (a retried round that re-sent its release is not charged again). */
  rounds: number;
  noiseMultiplier: number;
  clipNorm: number;
  samplingRate: number;
  stepsPerRound: number;
  delta: number;
  /** ε of the training rounds alone. */
  trainingEpsilon: number;
  /** Noisy evaluation releases charged, their noise (counts) and their ε alone; 0 / null / 0 without them. */
  evaluationReleases: number;
  evaluationNoiseStddev: number | null;
  evaluationEpsilon: number;
  /** The study's charged ε: max(training, evaluation), the two parts being disjoint records (parallel composition). */
  epsilon: number;
  accountant: string;
}

export interface BudgetReport {
  studies: StudyBudgetLine[];
  /** Every event on this silo's data composed (plain RDP sum) and converted at the cap's δ; null without a cap. */
  total: { epsilon: number; delta: number; cap: number } | null;
}

function eventOf(e: Pick<LedgerEntry, 'noiseMultiplier' | 'samplingRate' | 'steps'>): SampledGaussianEvent {
  return { noiseMultiplier: e.noiseMultiplier, samplingRate: e.samplingRate, steps: e.steps };
}

/** The events one charge of `mechanism` adds: the training round's sampled Gaussian, the evaluation's Gaussian. */
function eventsOf(mechanism: PrivacyMechanism, request: ChargeRequest): SampledGaussianEvent[] {
  const out: SampledGaussianEvent[] = [];
  if (request.trainingRounds) {
    out.push({
      noiseMultiplier: mechanism.noiseMultiplier,
      samplingRate: mechanism.samplingRate,
      steps: mechanism.stepsPerRound,
    });
  }
  if (request.personalizations) {
    if (mechanism.personalizationSteps === 0) throw new RangeError('this plan has no personalization to charge');
    out.push({
      noiseMultiplier: mechanism.noiseMultiplier,
      samplingRate: mechanism.samplingRate,
      steps: mechanism.personalizationSteps,
    });
  }
  for (let i = 0; i < request.evaluationReleases; i++) {
    if (mechanism.evaluation === null) throw new RangeError('this plan has no noisy evaluation to charge');
    out.push({ noiseMultiplier: mechanism.evaluation.noiseStddev, samplingRate: 1, steps: 1 });
  }
  return out;
}

/**
 * The silo's own privacy accounting across all studies that used its data (`privacy-ledger.json`, replaced
 * atomically and flushed). The agent checks it before every charge and refuses work that would break the approved
 * plan (more training rounds or noisy evaluations than planned, or ε above the target: `planLimitRefusal`) or cross
 * the silo's own cap, whatever the hub asks. A charge is written before the release it pays for is persisted and
 * long before it leaves the silo; a charge whose release never left still counts (the count errs on the safe side).
 * The cap composes every event of every study — training rounds and evaluation releases alike — by a plain RDP sum,
 * which is conservative (it ignores that training and test records are disjoint).
 */
export class SiloPrivacyLedger {
  private readonly file: string;

  constructor(
    root: string,
    readonly cap: PrivacyCap | undefined,
  ) {
    this.file = join(root, 'privacy-ledger.json');
  }

  entries(): LedgerEntry[] {
    if (!existsSync(this.file)) return [];
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(this.file, 'utf8'));
    } catch (err) {
      throw this.corrupt((err as Error).message);
    }
    const current = LedgerFile.safeParse(json);
    if (current.success) return current.data.entries;
    const v1 = LedgerFileV1.safeParse(json);
    if (v1.success) return upgradeV1(v1.data.entries);
    const issue = current.error.issues[0];
    throw this.corrupt(issue ? `${issue.path.join('.')}: ${issue.message}` : 'not a ledger');
  }

  /** Training rounds, noisy evaluation releases and (when any) personalizations charged so far for a study. */
  counts(studyId: string): { trainingRounds: number; evaluationReleases: number; personalizations?: number } {
    const mine = this.entries().filter((e) => e.studyId === studyId);
    const personalizations = mine.filter((e) => e.kind === 'personalization').length;
    return {
      trainingRounds: mine.filter((e) => e.kind === 'training').length,
      evaluationReleases: mine.filter((e) => e.kind === 'evaluation').length,
      ...(personalizations > 0 ? { personalizations } : {}),
    };
  }

  /**
   * Why this silo must refuse a charge (null when it may go on): first the approved plan's limits, then the silo's
   * cap. Without DP (`mechanism` null) only the cap can refuse, and it always does: the spend would be unbounded.
   */
  refusal(studyId: string, mechanism: PrivacyMechanism | null, request: ChargeRequest): ChargeRefusal | null {
    if (mechanism !== null) {
      const now = this.counts(studyId);
      const after = {
        trainingRounds: now.trainingRounds + request.trainingRounds,
        evaluationReleases: now.evaluationReleases + request.evaluationReleases,
        personalizations: (now.personalizations ?? 0) + (request.personalizations ?? 0),
      };
      const limit = planLimitRefusal(mechanism, after);
      if (limit !== null) return { code: 'PLAN_LIMIT_REACHED', message: limit };
    }
    const cap = this.capRefusal(mechanism, request);
    return cap === null ? null : { code: 'PRIVACY_CAP_REACHED', message: cap };
  }

  private capRefusal(mechanism: PrivacyMechanism | null, request: ChargeRequest): string | null {
    if (!this.cap) return null;
    if (!mechanism) {
      return `this silo has a privacy cap (ε = ${this.cap.epsilon}, δ = ${this.cap.delta}) and the study trains without differential privacy`;
    }
    const events = this.entries().map(eventOf);
    const before = events.length ? epsilonForEvents(events, this.cap.delta).epsilon : 0;
    events.push(...eventsOf(mechanism, request));
    const after = epsilonForEvents(events, this.cap.delta).epsilon;
    if (after <= this.cap.epsilon) return null;
    const what = request.personalizations
      ? 'the personalization and the final evaluation'
      : request.trainingRounds && request.evaluationReleases
        ? 'one more round and its evaluation'
        : request.trainingRounds
          ? 'one more round'
          : 'one more evaluation release';
    return `this silo's privacy cap ε = ${this.cap.epsilon} (δ = ${this.cap.delta}) would be crossed: all studies so far spent ε = ${before.toPrecision(4)}, ${what} would bring it to ${after.toPrecision(4)}`;
  }

  /**
   * Charges a training round and/or an evaluation release of a study, after checking the plan's limits and the cap
   * again (ChargeRefusedError: nothing charged). The new ledger is on disk (flushed) when this returns. Returns the
   * study's spend after the charge, as the update header or the evaluation report carries it.
   */
  charge(
    study: { studyId: string; studyName: string; round: number; attempt: number; modelHash: string },
    mechanism: PrivacyMechanism,
    request: ChargeRequest,
    now = new Date(),
  ): PrivacySpend {
    if (!request.trainingRounds && !request.evaluationReleases && !request.personalizations) {
      throw new RangeError('nothing to charge');
    }
    const refusal = this.refusal(study.studyId, mechanism, request);
    if (refusal !== null) throw new ChargeRefusedError(refusal);
    const entries = this.entries();
    const before = this.counts(study.studyId);
    const after = {
      trainingRounds: before.trainingRounds + request.trainingRounds,
      evaluationReleases: before.evaluationReleases + request.evaluationReleases,
      personalizations: (before.personalizations ?? 0) + (request.personalizations ?? 0),
    };
    const spend = privacySpendOf(
      mechanism,
      after.trainingRounds,
      after.evaluationReleases,
      request,
      after.personalizations,
    );
    const common = {
      ...study,
      mechanism: mechanism.mechanism,
      unit: mechanism.unit,
      delta: mechanism.delta,
      trainingRounds: after.trainingRounds,
      evaluationReleases: after.evaluationReleases,
      ...(after.personalizations > 0 ? { personalizations: after.personalizations } : {}),
      epsilonCumulative: spend.epsilonCumulative,
      accountant: mechanism.accountant,
      at: now.toISOString(),
    };
    // The charge's ε increment is booked on its first event; a combined charge books 0 on the second.
    let increment = spend.epsilonRound;
    if (request.trainingRounds) {
      entries.push({
        ...common,
        kind: 'training',
        noiseMultiplier: mechanism.noiseMultiplier,
        clipNorm: mechanism.clipNorm,
        samplingRate: mechanism.samplingRate,
        steps: mechanism.stepsPerRound,
        epsilonRound: increment,
      });
      increment = 0;
    }
    if (request.personalizations) {
      entries.push({
        ...common,
        kind: 'personalization',
        noiseMultiplier: mechanism.noiseMultiplier,
        clipNorm: mechanism.clipNorm,
        samplingRate: mechanism.samplingRate,
        steps: mechanism.personalizationSteps,
        epsilonRound: increment,
      });
      increment = 0;
    }
    for (let i = 0; i < request.evaluationReleases; i++) {
      entries.push({
        ...common,
        kind: 'evaluation',
        // One test record changes one histogram count by one: sensitivity 1, so σ relative to it is the stddev.
        noiseMultiplier: mechanism.evaluation!.noiseStddev,
        clipNorm: 1,
        samplingRate: 1,
        steps: 1,
        epsilonRound: increment,
      });
      increment = 0;
    }
    writeFileAtomic(this.file, JSON.stringify({ format: LEDGER_FORMAT, entries }, null, 2) + '\n');
    return spend;
  }

  report(): BudgetReport {
    const entries = this.entries();
    const byStudy = new Map<string, LedgerEntry[]>();
    for (const e of entries) byStudy.set(e.studyId, [...(byStudy.get(e.studyId) ?? []), e]);
    const studies = [...byStudy.values()].map((list): StudyBudgetLine => {
      const last = list[list.length - 1]!;
      const training = list.filter((e) => e.kind === 'training');
      // The personalization's DP-SGD steps compose with the training rounds' (the same training records).
      const trainingSide = list.filter((e) => e.kind !== 'evaluation');
      const evaluation = list.filter((e) => e.kind === 'evaluation');
      const lastTraining = training[training.length - 1];
      const partEpsilon = (part: LedgerEntry[]) =>
        part.length ? epsilonForEvents(part.map(eventOf), last.delta).epsilon : 0;
      return {
        studyId: last.studyId,
        studyName: last.studyName,
        mechanism: last.mechanism,
        unit: last.unit,
        rounds: training.length,
        noiseMultiplier: lastTraining?.noiseMultiplier ?? 0,
        clipNorm: lastTraining?.clipNorm ?? 0,
        samplingRate: lastTraining?.samplingRate ?? 0,
        stepsPerRound: lastTraining?.steps ?? 0,
        delta: last.delta,
        trainingEpsilon: partEpsilon(trainingSide),
        evaluationReleases: evaluation.length,
        evaluationNoiseStddev: evaluation[evaluation.length - 1]?.noiseMultiplier ?? null,
        evaluationEpsilon: partEpsilon(evaluation),
        epsilon: Math.max(...list.map((e) => e.epsilonCumulative)),
        accountant: last.accountant,
      };
    });
    const total =
      this.cap && entries.length
        ? {
            epsilon: epsilonForEvents(entries.map(eventOf), this.cap.delta).epsilon,
            delta: this.cap.delta,
            cap: this.cap.epsilon,
          }
        : this.cap
          ? { epsilon: 0, delta: this.cap.delta, cap: this.cap.epsilon }
          : null;
    return { studies, total };
  }

  private corrupt(reason: string): AgentError {
    return new AgentError(
      AgentErrorCode.STATE_CORRUPT,
      `the privacy ledger ${this.file} is unreadable (${reason}); the agent will not guess what was spent`,
    );
  }
}

/** Format-1 entries read as training rounds, numbered per study in file order; their model is unknown. */
function upgradeV1(entries: z.infer<typeof EntryV1>[]): LedgerEntry[] {
  const seen = new Map<string, number>();
  return entries.map((e) => {
    const rounds = (seen.get(e.studyId) ?? 0) + 1;
    seen.set(e.studyId, rounds);
    return { ...e, kind: 'training', modelHash: null, trainingRounds: rounds, evaluationReleases: 0 };
  });
}

export function formatBudget(r: BudgetReport): string {
  if (!r.studies.length)
    return (
      'no differentially private study has used this silo’s data yet' +
      (r.total ? ` (cap ε = ${r.total.cap}, δ = ${r.total.delta})` : '')
    );
  const lines = r.studies.flatMap((s) => [
    `${s.studyName} (${s.studyId}): ${s.mechanism}, unit ${s.unit}: ε = ${s.epsilon.toPrecision(4)} at δ = ${s.delta} charged (${s.accountant})`,
    `  training:   ${s.rounds} round(s), ε = ${s.trainingEpsilon.toPrecision(4)} [σ = ${s.noiseMultiplier.toPrecision(4)}, C = ${s.clipNorm}, q = ${s.samplingRate}, ${s.stepsPerRound} steps/round]`,
    s.evaluationReleases > 0
      ? `  evaluation: ${s.evaluationReleases} noisy release(s), ε = ${s.evaluationEpsilon.toPrecision(4)} [noise stddev ${s.evaluationNoiseStddev!.toPrecision(4)} counts, q = 1]`
      : '  evaluation: no noisy release charged',
  ]);
  lines.push(
    r.total
      ? `all studies composed (every training round and evaluation release, RDP sum): ε = ${r.total.epsilon.toPrecision(4)} at δ = ${r.total.delta}, cap ε = ${r.total.cap}`
      : 'no privacy cap configured (set TESSERA_PRIVACY_CAP_EPSILON to refuse work beyond one)',
  );
  return lines.join('\n');
}
