import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { epsilonForEvents } from '@tessera/dp/accountant';
import type { PrivacyMechanism, PrivacySpend } from '@tessera/protocol';
import { z } from 'zod';
import { AgentError, AgentErrorCode } from '../agent.error';
import { writeFileAtomic } from '../state/atomic-file.util';

/** The silo's own limit on what all studies together may spend on its data: (ε, δ), from its configuration. */
export interface PrivacyCap {
  epsilon: number;
  delta: number;
}

const Entry = z.object({
  studyId: z.string(),
  studyName: z.string(),
  round: z.number().int(),
  attempt: z.number().int(),
  mechanism: z.enum(['dp-sgd', 'dp-fedavg']),
  unit: z.enum(['record', 'silo']),
  noiseMultiplier: z.number(),
  clipNorm: z.number(),
  samplingRate: z.number(),
  steps: z.number().int(),
  delta: z.number(),
  epsilonRound: z.number(),
  epsilonCumulative: z.number(),
  accountant: z.string(),
  at: z.string(),
});
export type LedgerEntry = z.infer<typeof Entry>;
const LedgerFile = z.object({ format: z.literal('tessera.silo-privacy-ledger/1'), entries: z.array(Entry) });

export interface StudyBudgetLine {
  studyId: string;
  studyName: string;
  mechanism: string;
  unit: string;
  rounds: number;
  noiseMultiplier: number;
  clipNorm: number;
  samplingRate: number;
  stepsPerRound: number;
  delta: number;
  epsilon: number;
  accountant: string;
}

export interface BudgetReport {
  studies: StudyBudgetLine[];
  /** Every study on this silo's data composed (RDP) and converted at the cap's δ; null without a cap. */
  total: { epsilon: number; delta: number; cap: number } | null;
}

/**
 * The silo's own privacy accounting across all studies that used its data (`privacy-ledger.json`, replaced
 * atomically). The agent checks it before every DP task and refuses work that would cross its cap, whatever the
 * hub says: every recorded round is a sampled-Gaussian event, and all events on this data compose (RDP) into one
 * (ε, δ) at the cap's δ. Spend is recorded before the update leaves the silo (a refused upload still counts: the
 * noisy update was produced, and the count errs on the safe side).
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
    try {
      return LedgerFile.parse(JSON.parse(readFileSync(this.file, 'utf8'))).entries;
    } catch (err) {
      throw new AgentError(
        AgentErrorCode.STATE_CORRUPT,
        `the privacy ledger ${this.file} is unreadable (${(err as Error).message}); the agent will not guess what was spent`,
      );
    }
  }

  roundsSpent(studyId: string): number {
    return this.entries().filter((e) => e.studyId === studyId).length;
  }

  has(studyId: string, round: number, attempt: number): boolean {
    return this.entries().some((e) => e.studyId === studyId && e.round === round && e.attempt === attempt);
  }

  /**
   * Why this silo must refuse one more round of `mechanism` (null when it may go on). Without DP, any configured
   * cap refuses: the spend would be unbounded.
   */
  refusal(mechanism: PrivacyMechanism | null): string | null {
    if (!this.cap) return null;
    if (!mechanism) {
      return `this silo has a privacy cap (ε = ${this.cap.epsilon}, δ = ${this.cap.delta}) and the study trains without differential privacy`;
    }
    const events = this.entries().map((e) => ({
      noiseMultiplier: e.noiseMultiplier,
      samplingRate: e.samplingRate,
      steps: e.steps,
    }));
    const before = events.length ? epsilonForEvents(events, this.cap.delta).epsilon : 0;
    events.push({
      noiseMultiplier: mechanism.noiseMultiplier,
      samplingRate: mechanism.samplingRate,
      steps: mechanism.stepsPerRound,
    });
    const after = epsilonForEvents(events, this.cap.delta).epsilon;
    if (after <= this.cap.epsilon) return null;
    return `this silo's privacy cap ε = ${this.cap.epsilon} (δ = ${this.cap.delta}) would be crossed: all studies so far spent ε = ${before.toPrecision(4)}, one more round would bring it to ${after.toPrecision(4)}`;
  }

  /** Records a round's spend (once per study, round and attempt). */
  record(
    study: { studyId: string; studyName: string; round: number; attempt: number },
    spend: PrivacySpend,
    now = new Date(),
  ): void {
    if (this.has(study.studyId, study.round, study.attempt)) return;
    const entries = this.entries();
    entries.push({ ...study, ...spend, at: now.toISOString() });
    writeFileAtomic(this.file, JSON.stringify({ format: 'tessera.silo-privacy-ledger/1', entries }, null, 2) + '\n');
  }

  report(): BudgetReport {
    const entries = this.entries();
    const byStudy = new Map<string, LedgerEntry[]>();
    for (const e of entries) byStudy.set(e.studyId, [...(byStudy.get(e.studyId) ?? []), e]);
    const studies = [...byStudy.values()].map((list) => {
      const last = list[list.length - 1]!;
      return {
        studyId: last.studyId,
        studyName: last.studyName,
        mechanism: last.mechanism,
        unit: last.unit,
        rounds: list.length,
        noiseMultiplier: last.noiseMultiplier,
        clipNorm: last.clipNorm,
        samplingRate: last.samplingRate,
        stepsPerRound: last.steps,
        delta: last.delta,
        epsilon: last.epsilonCumulative,
        accountant: last.accountant,
      };
    });
    const total =
      this.cap && entries.length
        ? {
            epsilon: epsilonForEvents(
              entries.map((e) => ({
                noiseMultiplier: e.noiseMultiplier,
                samplingRate: e.samplingRate,
                steps: e.steps,
              })),
              this.cap.delta,
            ).epsilon,
            delta: this.cap.delta,
            cap: this.cap.epsilon,
          }
        : this.cap
          ? { epsilon: 0, delta: this.cap.delta, cap: this.cap.epsilon }
          : null;
    return { studies, total };
  }
}

export function formatBudget(r: BudgetReport): string {
  if (!r.studies.length)
    return (
      'no differentially private study has used this silo’s data yet' +
      (r.total ? ` (cap ε = ${r.total.cap}, δ = ${r.total.delta})` : '')
    );
  const lines = r.studies.map(
    (s) =>
      `${s.studyName} (${s.studyId}): ${s.mechanism}, unit ${s.unit}, ${s.rounds} round(s): ε = ${s.epsilon.toPrecision(4)} at δ = ${s.delta} ` +
      `[σ = ${s.noiseMultiplier.toPrecision(4)}, C = ${s.clipNorm}, q = ${s.samplingRate}, ${s.stepsPerRound} steps/round, ${s.accountant}]`,
  );
  lines.push(
    r.total
      ? `all studies composed: ε = ${r.total.epsilon.toPrecision(4)} at δ = ${r.total.delta}, cap ε = ${r.total.cap}`
      : 'no privacy cap configured (set TESSERA_PRIVACY_CAP_EPSILON to refuse work beyond one)',
  );
  return lines.join('\n');
}
