import type { ChildProcess } from 'node:child_process';
import type { RoundView } from '../rounds/rounds-query.service';
import type { StudyView } from '../studies/studies.service';
import type { DemoAdmin } from './demo-hub';
import { startAgentDaemon, type ProcessOutcome } from './demo-processes';
import type { DemoSilo } from './demo-study';

export interface StudyRun {
  /** The study as it ended (completed: a failed or stopped study throws). */
  final: StudyView;
  /** From the start request to the end of the study, agents' exits included. */
  trainingMs: number;
  /**
   * Under secure aggregation, what each agent said the protocol cost it, summed over its rounds: computation for the
   * protocol (waiting not counted) against its local training (the issue's "at most 10% of training time").
   */
  secureAggregationCost: Record<string, { computeMs: number; trainingMs: number; rounds: number }> | null;
}

const SECAGG_COST =
  /secure aggregation computed for ([\d.]+) ms \(keys, shares, masking, answers; waiting not counted\) against ([\d.]+) ms of local training/;

/** Sums an agent's per-round "secure aggregation computed for …" lines (null when it printed none). */
export function secureAggregationCostOf(out: string): { computeMs: number; trainingMs: number; rounds: number } | null {
  let computeMs = 0;
  let trainingMs = 0;
  let rounds = 0;
  for (const line of out.split('\n')) {
    const m = SECAGG_COST.exec(line);
    if (!m) continue;
    computeMs += Number(m[1]);
    trainingMs += Number(m[2]);
    rounds += 1;
  }
  return rounds === 0 ? null : { computeMs, trainingMs, rounds };
}

/** One progress line for a round that closed (or failed). */
function roundLine(r: RoundView): string {
  const acc = r.summary?.evaluation.accuracy.unweighted;
  return (
    `round ${String(r.number).padStart(2)} ${r.kind === 'train' ? 'trained ' : 'evaluated'} ${r.status}: ` +
    `${r.summary?.reported ?? 0}/${r.participants.length} silos, mean accuracy of the model it started from ` +
    (acc === null || acc === undefined
      ? '— (not released)'
      : `${acc.toFixed(3)}${r.summary?.evaluation.noisy ? ' (noisy DP estimate)' : ''}`)
  );
}

/** Polls the study until it ends, logging each round once, as it closes. */
async function followRounds(admin: DemoAdmin, studyId: string, log: (line: string) => void): Promise<StudyView> {
  const shown = new Set<string>();
  for (;;) {
    const study = await admin.api<StudyView>('GET', `/api/studies/${studyId}`);
    const rounds = await admin.api<RoundView[]>('GET', `/api/studies/${studyId}/rounds`);
    for (const r of rounds.filter((x) => x.status !== 'open' && x.status !== 'closing')) {
      const key = `${r.number}.${r.attempt}`;
      if (shown.has(key)) continue;
      shown.add(key);
      log(roundLine(r));
    }
    if (['completed', 'failed', 'stopped'].includes(study.status)) return study;
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** An agent daemon's exit, named after its silo. */
export type AgentExit = Promise<ProcessOutcome & { name: string }>;

/**
 * Starts every silo's agent daemon for the study (added to `agents`, which the caller stops if anything fails). Started
 * before the stewards approve, the daemons load while the approvals run and wait for the study in a long poll.
 */
export function startAgents(studyId: string, silos: DemoSilo[], agents: ChildProcess[]): AgentExit[] {
  return silos.map((s) => {
    const daemon = startAgentDaemon(studyId, s);
    agents.push(daemon.child);
    return daemon.exit;
  });
}

/** Starts the study, follows it to its end, and requires it completed with every agent (`exits`) exiting 0. */
export async function runStudy(
  admin: DemoAdmin,
  studyId: string,
  exits: AgentExit[],
  log: (line: string) => void,
): Promise<StudyRun> {
  await admin.api('POST', `/api/studies/${studyId}/start`);
  const trainingStarted = Date.now();
  const final = await followRounds(admin, studyId, log);
  const agentResults = await Promise.all(exits);
  const trainingMs = Date.now() - trainingStarted;
  if (final.status !== 'completed') throw new Error(`the study ${final.status}: ${final.endReason ?? ''}`);
  const failedAgents = agentResults.filter((a) => a.code !== 0);
  if (failedAgents.length) {
    throw new Error(`agents failed: ${failedAgents.map((a) => `${a.name}\n${a.out}`).join('\n')}`);
  }
  const costs = agentResults.map((a) => [a.name, secureAggregationCostOf(a.out)] as const);
  const measured = costs.filter((c): c is readonly [string, NonNullable<(typeof c)[1]>] => c[1] !== null);
  return { final, trainingMs, secureAggregationCost: measured.length ? Object.fromEntries(measured) : null };
}
