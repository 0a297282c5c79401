import {
  PrivacyParameterError,
  pldEpsilon,
  plannedEvaluationReleases,
  privacyMechanismOf,
  PrivacyPlanError,
} from '@tessera/dp';
import {
  describePlan,
  describePlanChanges,
  HubErrorCode,
  planHash,
  type SiloStudy,
  type StudyPlan,
} from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';
import { auditedStudyTransport } from '../audit/agent-audit.command';
import { SiloSession } from '../hub/silo-session';
import { SiloStudyTransport, type StudyTransport } from '../hub/study-transport';
import { ApprovalStore, type LocalDecision } from '../state/approval-store';
import type { AgentCommandContext, RegisterAgentCommand } from './agent-command';

/** A study and the plan hash this agent computed from the plan itself (which is what a steward approves). */
export interface ReviewedStudy {
  study: SiloStudy;
  computedHash: string;
  local: LocalDecision | undefined;
}

function reviewed(study: SiloStudy, approvals: ApprovalStore): ReviewedStudy {
  return {
    study,
    computedHash: planHash(study.studyId, study.planVersion, study.plan),
    local: approvals.get(study.studyId),
  };
}

export async function listStudies(transport: StudyTransport, approvals: ApprovalStore): Promise<ReviewedStudy[]> {
  return (await transport.listStudies()).map((s) => reviewed(s, approvals));
}

/** Finds a study by its id or a unique prefix of it (at least 8 characters). */
export async function findStudy(
  transport: StudyTransport,
  approvals: ApprovalStore,
  id: string,
): Promise<ReviewedStudy> {
  const studies = await transport.listStudies();
  const exact = studies.find((s) => s.studyId === id);
  const matches = exact ? [exact] : id.length >= 8 ? studies.filter((s) => s.studyId.startsWith(id)) : [];
  if (matches.length !== 1) {
    throw new AgentError(
      AgentErrorCode.STUDY_NOT_FOUND,
      matches.length === 0
        ? `No study ${id} is visible to this silo (tessera-agent studies list shows those that are).`
        : `${id} matches ${matches.length} studies; give more of the id.`,
    );
  }
  return reviewed(matches[0]!, approvals);
}

/** This silo's decision in a few words: the hub's record, checked against the current plan and the local record. */
export function decisionSummary(r: ReviewedStudy): string {
  const hub = r.study.decision;
  const local = r.local?.planHash === r.computedHash ? r.local : undefined;
  if (hub === null || hub.planHash !== r.study.planHash) {
    const older = hub === null ? '' : ` (${hub.decision}d version ${hub.planVersion})`;
    return `undecided${older}`;
  }
  const word = hub.decision === 'approve' ? 'approved' : 'rejected';
  if (local === undefined) return `${word} at the hub, NOT in this agent's record`;
  if (local.decision !== hub.decision) return `${word} at the hub, but ${local.decision}d in this agent's record`;
  return `${word}${local.decidedBy === 'policy' ? ' (policy)' : ''}`;
}

export function formatStudyTable(rows: ReviewedStudy[]): string {
  if (rows.length === 0) return 'No studies: this silo has not been invited to any.';
  const table = [
    ['STUDY', 'NAME', 'STATUS', 'VERSION', 'PLAN HASH', 'DECISION'],
    ...rows.map((r) => [
      r.study.studyId,
      r.study.plan.name,
      r.study.status,
      String(r.study.planVersion),
      r.computedHash.slice(0, 12) + (r.computedHash === r.study.planHash ? '' : ' (MISMATCH)'),
      decisionSummary(r),
    ]),
  ];
  const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  return table
    .map((row) =>
      row
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** What a steward reads before deciding: the plan in words, the exact hash, the privacy cost. */
export function formatStudy(r: ReviewedStudy): string {
  const { study } = r;
  const lines = [
    `id:           ${study.studyId}`,
    `status:       ${study.status}`,
    `version:      ${study.planVersion}`,
    ...(study.paused
      ? [`paused:       since ${study.paused.since} (${study.paused.reason}); no new round opens until it is resumed`]
      : []),
    ...(study.changesFromPrevious?.length
      ? [
          `changed from version ${study.planVersion - 1}:`,
          ...describePlanChanges(study.changesFromPrevious).map((line) => `  ${line}`),
        ]
      : []),
    // The protocol's wording, the same the console shows.
    ...describePlan(study.plan),
    `plan hash:    ${r.computedHash}`,
  ];
  if (r.computedHash !== study.planHash) {
    lines.push(
      `WARNING:      the hub names the plan hash ${study.planHash}, but the plan it sent hashes to the value above; do not approve`,
    );
  }
  if (study.privacyCost !== null) {
    const c = study.privacyCost;
    lines.push(
      `privacy cost: ε = ${c.epsilon}, δ = ${c.delta} for the whole study (${c.accountant}, noise multiplier ${c.noiseMultiplier}${c.stepsPerRound === undefined ? '' : `, ${c.stepsPerRound} steps per round`})`,
    );
  }
  lines.push(...releaseLimits(study.plan));
  const tighter = tighterEstimate(study.plan);
  if (tighter !== null) lines.push(tighter);
  lines.push(`decision:     ${decisionSummary(r)}`);
  return lines.join('\n');
}

/**
 * What this agent itself derives from the plan and enforces, whatever the hub asks: the noisy evaluation's noise
 * and what the evaluation releases alone cost, and the most training rounds and evaluation releases it will send.
 */
function releaseLimits(plan: StudyPlan): string[] {
  let m;
  try {
    m = privacyMechanismOf(plan);
  } catch (error) {
    if (error instanceof PrivacyPlanError)
      return [`WARNING:      this agent refuses the plan's privacy: ${error.message}`];
    throw error;
  }
  const evaluations = plannedEvaluationReleases(plan);
  const lines: string[] = [];
  if (m?.evaluation) {
    lines.push(
      `noisy eval:   discrete Gaussian noise, standard deviation ${m.evaluation.noiseStddev.toPrecision(4)} counts on each histogram count; ${m.evaluation.releases} release(s) cost ε = ${m.evaluation.plannedEpsilon.toFixed(4)} on the test records (charged as the larger of training and evaluation: the records are disjoint)`,
    );
  }
  if (m !== null && m.personalizationSteps > 0) {
    lines.push(
      `personalize:  the fine-tuning at the final evaluation is ${m.personalizationSteps} more DP-SGD steps (σ ${m.noiseMultiplier.toPrecision(4)}, q ${m.samplingRate}), charged once and included in ε`,
    );
  }
  lines.push(
    `limits:       this agent sends at most ${plan.training.rounds} training update(s) and ${evaluations} evaluation release(s) for this plan${m ? `, and stops at ε = ${m.targetEpsilon}` : ''}; it refuses more (PLAN_LIMIT_REACHED) whatever the hub asks`,
  );
  return lines;
}

/**
 * This agent's own second opinion on a DP plan: the whole study's ε by the privacy-loss-distribution accountant,
 * which is tighter than the RDP figure every ledger charges. Null without DP, or when the PLD grid would be too large.
 */
function tighterEstimate(plan: StudyPlan): string | null {
  const m = privacyMechanismOf(plan);
  if (m === null) return null;
  try {
    const pld = pldEpsilon({
      noiseMultiplier: m.noiseMultiplier,
      samplingRate: m.samplingRate,
      // The personalization's DP-SGD steps compose with the rounds' (plan.personalization).
      steps: m.stepsPerRound * m.rounds + m.personalizationSteps,
      delta: m.delta,
    });
    return (
      `tighter:      ε = ${pld.epsilon.toFixed(4)} by the ${pld.accountant} accountant, computed here ` +
      `(informational: the budgets charge the RDP figure)`
    );
  } catch (error) {
    if (error instanceof PrivacyParameterError) return null; // e.g. a grid beyond what the PLD accountant computes
    throw error;
  }
}

/**
 * Approves the current plan of a study: sends the hash this agent computed from the plan it received (never the hub's
 * word for it), refuses if the steward named another hash, and records the approval locally only once the hub
 * accepted it.
 */
export async function approveStudy(
  transport: StudyTransport,
  approvals: ApprovalStore,
  id: string,
  options: { planHash?: string; now?: Date } = {},
): Promise<ReviewedStudy> {
  const r = await findStudy(transport, approvals, id);
  guardHash(r);
  if (options.planHash !== undefined && options.planHash.trim().toLowerCase() !== r.computedHash) {
    throw new AgentError(
      AgentErrorCode.PLAN_MISMATCH,
      `You gave plan hash ${options.planHash}, but the study's current plan (version ${r.study.planVersion}) hashes to ${r.computedHash}. ` +
        `Nothing was approved; read the plan again with: tessera-agent studies show ${r.study.studyId}`,
    );
  }
  return decide(transport, approvals, r, 'approve', undefined, options.now ?? new Date());
}

export async function rejectStudy(
  transport: StudyTransport,
  approvals: ApprovalStore,
  id: string,
  reason: string,
  now = new Date(),
): Promise<ReviewedStudy> {
  if (reason.trim() === '') throw new AgentError(AgentErrorCode.USAGE, 'give a reason with --reason');
  const r = await findStudy(transport, approvals, id);
  guardHash(r);
  return decide(transport, approvals, r, 'reject', reason, now);
}

function guardHash(r: ReviewedStudy): void {
  if (r.computedHash !== r.study.planHash) {
    throw new AgentError(
      AgentErrorCode.PLAN_MISMATCH,
      `The hub names plan hash ${r.study.planHash}, but the plan it sent hashes to ${r.computedHash}. Nothing was sent; tell the hub administrator.`,
    );
  }
}

async function decide(
  transport: StudyTransport,
  approvals: ApprovalStore,
  r: ReviewedStudy,
  decision: 'approve' | 'reject',
  reason: string | undefined,
  now: Date,
): Promise<ReviewedStudy> {
  let updated: SiloStudy;
  try {
    updated = await transport.decide(r.study.studyId, {
      planHash: r.computedHash,
      decision,
      ...(reason === undefined ? {} : { reason: reason.slice(0, 1000) }),
    });
  } catch (err) {
    // Only STALE_PLAN says the plan changed. Other refusals, 409 too (STUDY_STATE: the study no longer takes
    // decisions), propagate in the hub's own words.
    if (err instanceof AgentError && err.hubCode === HubErrorCode.STALE_PLAN) {
      throw new AgentError(
        AgentErrorCode.PLAN_MISMATCH,
        `The plan changed at the hub since it was read (${err.message}). Nothing was recorded; read it again with: tessera-agent studies show ${r.study.studyId}`,
        409,
      );
    }
    throw err;
  }
  approvals.record(r.study.studyId, {
    planHash: r.computedHash,
    planVersion: r.study.planVersion,
    decision,
    decidedAt: now.toISOString(),
    decidedBy: 'steward',
  });
  return reviewed(updated, approvals);
}

/** The transport a steward's commands use, and the agent's local record of its decisions. */
function stewardContext(stateOf: AgentCommandContext['stateOf']) {
  const state = stateOf();
  // Audit: a steward's approvals and rejections go to the agent's own log (apps/agent/src/audit).
  const transport = auditedStudyTransport(state, new SiloStudyTransport(new SiloSession(state)), 'steward');
  return { transport, approvals: new ApprovalStore(state.root) };
}

const STUDY_ID_ARGUMENT = 'study id (or a unique prefix of at least 8 characters)';

/** `tessera-agent studies list|show|approve|reject`: what a data steward reviews and decides. */
export const registerStudiesCommand: RegisterAgentCommand = (program, { io, stateOf }) => {
  const studies = program.command('studies').description('studies this silo is invited to, and its decisions on them');

  studies
    .command('list')
    .description("list the studies: id, name, status, plan version, plan hash prefix and this silo's decision")
    .action(async () => {
      const { transport, approvals } = stewardContext(stateOf);
      io.out(formatStudyTable(await listStudies(transport, approvals)) + '\n');
    });

  studies
    .command('show')
    .description("show a study's plan in words with its full hash, as a steward reviews it")
    .argument('<id>', STUDY_ID_ARGUMENT)
    .option('--json', 'print the raw plan as JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const { transport, approvals } = stewardContext(stateOf);
      const r = await findStudy(transport, approvals, id);
      io.out((opts.json ? JSON.stringify(r.study.plan, null, 2) : formatStudy(r)) + '\n');
    });

  studies
    .command('approve')
    .description("approve the study's current plan; the agent sends the hash it computed from the plan itself")
    .argument('<id>', STUDY_ID_ARGUMENT)
    .option('--plan-hash <sha256>', 'refuse unless the current plan has exactly this hash (the one you read)')
    .action(async (id: string, opts: { planHash?: string }) => {
      const { transport, approvals } = stewardContext(stateOf);
      const r = await approveStudy(
        transport,
        approvals,
        id,
        opts.planHash === undefined ? {} : { planHash: opts.planHash },
      );
      io.out(
        `approved ${r.study.plan.name} (${r.study.studyId}) plan version ${r.study.planVersion}, hash ${r.computedHash}\n`,
      );
    });

  studies
    .command('reject')
    .description("reject the study's current plan")
    .argument('<id>', STUDY_ID_ARGUMENT)
    .requiredOption('--reason <text>', 'why (recorded at the hub and shown to its administrators)')
    .action(async (id: string, opts: { reason: string }) => {
      const { transport, approvals } = stewardContext(stateOf);
      const r = await rejectStudy(transport, approvals, id, opts.reason);
      io.out(`rejected ${r.study.plan.name} (${r.study.studyId}) plan version ${r.study.planVersion}\n`);
    });
};
