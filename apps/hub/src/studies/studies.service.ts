import { Inject, Injectable } from '@nestjs/common';
import {
  planChanges,
  planHash,
  studyPlanProblems,
  type PlanChange,
  type Decision,
  type SiloDecisionView,
  type SiloStudy,
  type StudyPlan,
  type StudyStatus,
  type StudyView,
} from '@tessera/protocol';
import { AuditCheckpointService } from '../audit/audit-checkpoint.service';
import { AuditTrail, type AuditActor } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import { parameterCount } from '../rounds/model-math';
import { aggregationMemoryProblems } from '../rounds/plan-aggregation.util';
import { RoundsService } from '../rounds/rounds.service';
import { assertCurrentPlan, invitedSilosOf, LEGACY_PLAN_NOTE, storedPlanOf } from '../study-state/stored-plan.util';
import { priceStudy } from './study-privacy';
import { StudiesRepository, type CurrentPlan, type StudiesUnitOfWork } from './studies.repository';
import { progressOf } from './study-progress';
import { StudyDecisionEntity } from './study-decision.entity';
import { StudyEntity, type PrivacyCost } from '../study-state/study.entity';

/** The API's study views are the shared wire types (libs/protocol api-views), so hub and console cannot drift. */
export type { SiloDecisionView, StudyView };

/** Which studies GET /api/studies lists: the default leaves archived ones out. */
export const ARCHIVED_FILTERS = ['exclude', 'include', 'only'] as const;
export type ArchivedFilter = (typeof ARCHIVED_FILTERS)[number];

/** An archived study is read-only: every command refuses it, naming why. */
export function assertNotArchived(study: Pick<StudyEntity, 'name' | 'archivedAt'>): void {
  if (study.archivedAt) {
    throw new HubException(
      HubErrorCode.STUDY_STATE,
      `Study "${study.name}" is archived (read-only since ${study.archivedAt.toISOString()}); unarchive it first.`,
    );
  }
}

/** The pause as the API and agents show it: only while the study runs. */
export function pausedOf(s: Pick<StudyEntity, 'status' | 'pausedAt' | 'pauseReason'>): StudyView['paused'] {
  return s.status === 'running' && s.pausedAt ? { since: s.pausedAt.toISOString(), reason: s.pauseReason ?? '' } : null;
}

/** The study's row locked for the rest of the transaction; NOT_FOUND when there is none. */
export async function lockedStudy(tx: Pick<StudiesUnitOfWork, 'lockStudy'>, id: string): Promise<StudyEntity> {
  const study = await tx.lockStudy(id);
  if (!study) throw new HubException(HubErrorCode.NOT_FOUND, `No study with id ${id}.`);
  return study;
}

/** The latest decision per silo, from decisions that come oldest first. */
function latestPerSilo(rows: StudyDecisionEntity[]): Map<string, StudyDecisionEntity> {
  return new Map(rows.map((r) => [r.siloId, r]));
}

/** Which transitions an administrator may make, from which states. */
const EDITABLE: StudyStatus[] = ['draft', 'awaiting_approvals'];

/** Study governance: plans and their versions, invitations, each silo's decision on the exact plan, lifecycle. */
@Injectable()
export class StudiesService {
  constructor(
    private readonly repository: StudiesRepository,
    private readonly rounds: RoundsService,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
    private readonly checkpoints: AuditCheckpointService,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
  ) {}

  /** A new draft study; `clonedFrom` names the study whose plan it copies (StudyLifecycleService.clone). */
  async create(planInput: unknown, actor: AuditActor, clonedFrom: string | null = null): Promise<StudyView> {
    const { plan, cost } = await this.validate(planInput);
    const study = await this.repository.inTransaction(async (tx) => {
      const saved = await tx.insertStudy({
        name: plan.name,
        status: 'draft',
        planVersion: 1,
        planHash: '0'.repeat(64),
        plan,
        privacyCost: cost,
        participants: [],
        createdBy: actor.type === 'user' ? actor.id : null,
        clonedFrom,
      });
      saved.planHash = planHash(saved.id, 1, plan);
      await tx.updateStudy(saved.id, { planHash: saved.planHash });
      await tx.insertPlanVersion({ studyId: saved.id, version: 1, planHash: saved.planHash, plan });
      await this.audit.record({
        actor,
        action: 'study.created',
        subject: { studyId: saved.id },
        details: {
          name: plan.name,
          planVersion: 1,
          planHash: saved.planHash,
          invitedSilos: plan.silos,
          privacyCost: cost,
          ...(clonedFrom ? { clonedFrom } : {}),
        },
      });
      return saved;
    });
    return this.get(study.id);
  }

  /** A changed plan is a new version with a new hash; decisions on older versions no longer count. */
  async updatePlan(id: string, planInput: unknown, actor: AuditActor): Promise<StudyView> {
    const { plan, cost } = await this.validate(planInput);
    await this.repository.inTransaction(async (tx) => {
      const study = await this.lock(tx, id);
      assertNotArchived(study);
      assertCurrentPlan(study, 'take a new plan version');
      if (!EDITABLE.includes(study.status)) {
        throw new HubException(HubErrorCode.STUDY_STATE, `A ${study.status} study's plan can no longer change.`);
      }
      const version = study.planVersion + 1;
      const hash = planHash(id, version, plan);
      await tx.updateStudy(id, { plan, planVersion: version, planHash: hash, privacyCost: cost, name: plan.name });
      await tx.insertPlanVersion({ studyId: id, version, planHash: hash, plan });
      await this.audit.record({
        actor,
        action: 'study.plan.versioned',
        subject: { studyId: id },
        details: { planVersion: version, planHash: hash, invitedSilos: plan.silos, privacyCost: cost },
      });
    });
    return this.get(id);
  }

  /** Sends the invitations: invited silos' agents now see the plan and can decide. */
  async submit(id: string, actor: AuditActor): Promise<StudyView> {
    await this.transition(id, ['draft'], 'awaiting_approvals', actor, 'study.submitted');
    return this.get(id);
  }

  /** Starts with the silos that approved the current plan hash, if they are at least the plan's minimum. */
  async start(id: string, actor: AuditActor): Promise<StudyView> {
    await this.repository.inTransaction(async (tx) => {
      const study = await this.lock(tx, id);
      assertNotArchived(study);
      assertCurrentPlan(study, 'start');
      if (study.status !== 'awaiting_approvals') {
        throw new HubException(
          HubErrorCode.STUDY_STATE,
          `Only a study awaiting approvals can start (this one is ${study.status}).`,
        );
      }
      const decisions = await this.currentDecisions(tx, study);
      const approved = study.plan.silos.filter((s) => decisions.get(s)?.decision === 'approve');
      const suspended = await tx.suspendedSilos(approved);
      const participants = approved.filter((s) => !suspended.some((x) => x.id === s));
      const min = study.plan.participation.minSilosPerRound;
      if (participants.length < min) {
        throw new HubException(
          HubErrorCode.STUDY_STATE,
          `Only ${participants.length} of ${study.plan.silos.length} invited silos approved plan version ${study.planVersion} (hash ${study.planHash.slice(0, 12)}…); the plan needs at least ${min}.`,
        );
      }
      await tx.updateStudy(id, { status: 'running', participants, startedAt: new Date() });
      const charges = await this.rounds.openFirstRound(tx.transaction, { ...study, participants });
      // Recorded in the start transaction (the records join it): the start and its charges commit with their records.
      await this.audit.record({
        actor,
        action: 'study.started',
        subject: { studyId: id },
        details: { participants, planHash: study.planHash },
      });
      await this.rounds.auditCharges(id, charges);
    });
    this.rounds.wake();
    return this.get(id);
  }

  async stop(id: string, reason: string, actor: AuditActor): Promise<StudyView> {
    await this.repository.inTransaction(async (tx) => {
      const study = await this.lock(tx, id);
      assertNotArchived(study);
      if (!['draft', 'awaiting_approvals', 'running'].includes(study.status)) {
        throw new HubException(HubErrorCode.STUDY_STATE, `A ${study.status} study cannot be stopped.`);
      }
      await this.rounds.abandonOpenRounds(tx.transaction, id);
      await tx.updateStudy(id, {
        status: 'stopped',
        endReason: reason,
        endedAt: new Date(),
        // A paused study that stops keeps no round held back for a resume that can no longer come.
        pausedAt: null,
        pauseReason: null,
        pausedNextRound: null,
      });
      await this.audit.record({ actor, action: 'study.stopped', subject: { studyId: id }, details: { reason } });
    });
    // Its open rounds were abandoned: agents waiting in a long poll read their studies again now.
    this.rounds.wake();
    await this.checkpoints.checkpointNow();
    return this.get(id);
  }

  /** Newest first; archived studies only when asked for ('include' them, or 'only' them). */
  async list(archived: ArchivedFilter = 'exclude'): Promise<StudyView[]> {
    return this.views(await this.repository.listStudies(archived));
  }

  async get(id: string): Promise<StudyView> {
    const [view] = await this.views([await this.entity(id)]);
    return view!;
  }

  async entity(id: string): Promise<StudyEntity> {
    const study = await this.repository.findStudy(id);
    if (!study) throw new HubException(HubErrorCode.NOT_FOUND, `No study with id ${id}.`);
    return study;
  }

  /** The studies a silo is invited to (drafts stay invisible until submitted). */
  async forSilo(siloId: string): Promise<SiloStudy[]> {
    const studies = await this.repository.studiesInviting(siloId);
    const out: SiloStudy[] = [];
    for (const s of studies) {
      // A plan of an earlier format is not a SiloStudy plan (agents would refuse the whole list) and the study can
      // never run again: it is not offered to agents. Administrators and auditors still see it.
      if (!storedPlanOf(s.plan).current) continue;
      const decision = latestPerSilo(await this.repository.currentDecisions(s)).get(siloId);
      out.push({
        studyId: s.id,
        status: s.status,
        planVersion: s.planVersion,
        planHash: s.planHash,
        plan: s.plan,
        privacyCost: s.privacyCost,
        decision: decision
          ? {
              planHash: decision.planHash,
              planVersion: decision.planVersion,
              decision: decision.decision,
              decidedAt: decision.decidedAt.toISOString(),
            }
          : null,
        paused: pausedOf(s),
        ...(s.planVersion > 1 ? { changesFromPrevious: await this.changesFromPrevious(s) } : {}),
      });
    }
    return out;
  }

  /** A steward's decision, sent by the silo's agent: valid only for the current plan hash, while awaiting approvals. */
  async decide(
    siloId: string,
    studyId: string,
    hash: string,
    decision: Decision,
    reason: string | undefined,
  ): Promise<SiloStudy> {
    await this.repository.inTransaction(async (tx) => {
      const study = await this.lock(tx, studyId);
      if (!invitedSilosOf(study.plan).includes(siloId) || study.status === 'draft') {
        throw new HubException(HubErrorCode.NOT_FOUND, `No study ${studyId} is open to this silo.`);
      }
      assertNotArchived(study);
      assertCurrentPlan(study, 'take decisions');
      if (study.status !== 'awaiting_approvals') {
        throw new HubException(
          HubErrorCode.STUDY_STATE,
          `Study "${study.name}" is ${study.status}: decisions are closed.`,
        );
      }
      if (hash !== study.planHash) {
        throw new HubException(
          HubErrorCode.STALE_PLAN,
          `Plan hash ${hash.slice(0, 12)}… is not the current plan (version ${study.planVersion}, hash ${study.planHash.slice(0, 12)}…). Review the current plan and decide again.`,
        );
      }
      await tx.insertDecision({
        studyId,
        siloId,
        planVersion: study.planVersion,
        planHash: hash,
        decision,
        reason: reason ?? null,
        decidedAt: new Date(),
      });
      await this.audit.record({
        actor: { type: 'silo', id: siloId },
        action: decision === 'approve' ? 'study.plan.approved' : 'study.plan.rejected',
        subject: { studyId, siloId },
        details: { planVersion: study.planVersion, planHash: hash, ...(reason ? { reason } : {}) },
      });
    });
    const mine = (await this.forSilo(siloId)).find((s) => s.studyId === studyId);
    if (!mine) throw new HubException(HubErrorCode.NOT_FOUND, `No study ${studyId} is open to this silo.`);
    return mine;
  }

  private async validate(input: unknown): Promise<{ plan: StudyPlan; cost: PrivacyCost | null }> {
    const problems = studyPlanProblems(input);
    if (problems.length > 0)
      throw new HubException(HubErrorCode.PLAN_INVALID, `The plan has ${problems.length} problem(s).`, problems);
    const plan = input as StudyPlan;
    const silos = await this.repository.silos(plan.silos);
    const more: string[] = [];
    plan.silos.forEach((id, i) => {
      const silo = silos.find((s) => s.id === id);
      if (!silo) more.push(`silos.${i}: no silo with id ${id}`);
      else if (silo.status === 'suspended') more.push(`silos.${i}: silo "${silo.name}" is suspended`);
    });
    let cost: PrivacyCost | null = null;
    try {
      cost = priceStudy(plan);
    } catch (err) {
      more.push(`privacy: ${(err as Error).message}`);
    }
    if (plan.aggregation || plan.screening) {
      // A robust aggregator or screening must fit this hub's memory for every invited silo reporting.
      more.push(
        ...aggregationMemoryProblems(plan, parameterCount(plan), {
          budgetBytes: this.config.aggregationMemory,
          blockParameters: this.config.aggregationBlockParameters,
        }),
      );
    }
    if (more.length > 0)
      throw new HubException(HubErrorCode.PLAN_INVALID, `The plan has ${more.length} problem(s).`, more);
    return { plan, cost };
  }

  private async transition(
    id: string,
    from: StudyStatus[],
    to: StudyStatus,
    actor: AuditActor,
    action: string,
  ): Promise<void> {
    await this.repository.inTransaction(async (tx) => {
      const study = await this.lock(tx, id);
      assertNotArchived(study);
      assertCurrentPlan(study, `become ${to}`);
      if (!from.includes(study.status)) {
        throw new HubException(HubErrorCode.STUDY_STATE, `A ${study.status} study cannot become ${to}.`);
      }
      await tx.updateStudy(id, { status: to });
      await this.audit.record({ actor, action, subject: { studyId: id }, details: { planHash: study.planHash } });
    });
  }

  /** What the study's current plan version changed from the version before it (read by stewards at their agent). */
  private async changesFromPrevious(study: StudyEntity): Promise<PlanChange[]> {
    const previous = await this.repository.planVersion(study.id, study.planVersion - 1);
    return previous ? planChanges(previous.plan, study.plan) : [];
  }

  private lock(tx: StudiesUnitOfWork, id: string): Promise<StudyEntity> {
    return lockedStudy(tx, id);
  }

  /** Latest decision per silo on the study's current plan version. */
  private async currentDecisions(tx: StudiesUnitOfWork, study: CurrentPlan): Promise<Map<string, StudyDecisionEntity>> {
    return latestPerSilo(await tx.currentDecisions(study));
  }

  /**
   * Studies as administrators and auditors see them; a legacy plan is shown as stored, flagged, never parsed
   * further. Four queries whatever the number of studies (the console polls the list).
   */
  private async views(studies: StudyEntity[]): Promise<StudyView[]> {
    if (studies.length === 0) return [];
    const invitedOf = new Map(
      studies.map((s) => {
        const stored = storedPlanOf(s.plan);
        return [s.id, { stored, invited: stored.current ? stored.plan.silos : invitedSilosOf(s.plan) }] as const;
      }),
    );
    const decisionRows = await this.repository.currentDecisionsOf(studies);
    const siloIds = [...new Set([...invitedOf.values()].flatMap((x) => x.invited))];
    const silos = siloIds.length ? await this.repository.silos(siloIds) : [];
    const nameOf = new Map(silos.map((x) => [x.id, x.name]));
    const progress = await this.repository.progress(studies.map((s) => s.id));
    return studies.map((s) => {
      const { stored, invited } = invitedOf.get(s.id)!;
      // The latest decision per silo on the study's current plan version (rows come oldest first).
      const decisions = new Map(decisionRows.filter((r) => r.studyId === s.id).map((r) => [r.siloId, r]));
      return {
        id: s.id,
        name: s.name,
        status: s.status,
        planVersion: s.planVersion,
        planHash: s.planHash,
        plan: s.plan,
        privacyCost: s.privacyCost,
        participants: s.participants,
        currentModelHash: s.currentModelHash,
        endReason: s.endReason,
        createdAt: s.createdAt.toISOString(),
        startedAt: s.startedAt?.toISOString() ?? null,
        endedAt: s.endedAt?.toISOString() ?? null,
        decisions: invited.map((siloId) => {
          const d = decisions.get(siloId);
          return {
            siloId,
            siloName: nameOf.get(siloId) ?? 'unknown',
            decision: d?.decision ?? null,
            planHash: d?.planHash ?? null,
            decidedAt: d?.decidedAt.toISOString() ?? null,
            reason: d?.reason ?? null,
          };
        }),
        ...(stored.current ? {} : { legacyPlan: { note: LEGACY_PLAN_NOTE, problems: stored.problems } }),
        paused: pausedOf(s),
        archivedAt: s.archivedAt?.toISOString() ?? null,
        clonedFrom: s.clonedFrom,
        progress: progressOf(progress.get(s.id), stored.current ? stored.plan.training.rounds : null),
      };
    });
  }
}
