import { plannedEvaluationReleases } from '@tessera/dp';
import type { PrivacySpend } from '@tessera/protocol';
import { ChargeRefusedError, type ChargeRequest, type SiloPrivacyLedger } from '../privacy/silo-privacy-ledger';
import type { ReleaseStore } from '../state/release-store';
import { fmt, StudyFailure, TaskFailure, type PlanContext, type StepLog } from './task-context';

export interface ReleaseBudgetDeps {
  releases: ReleaseStore;
  privacy: SiloPrivacyLedger;
  log: StepLog;
  clock: () => Date;
}

/**
 * What the approved plan lets this silo release, enforced at the silo whatever the hub asks: the plan's limits
 * (training rounds, exact evaluation releases), the privacy ledger's plan limits and target ε, and the silo's cap.
 * `check` runs before any download, training or charge; `charge` records the spend (flushed) before the release is
 * persisted and sent.
 */
export class ReleaseBudget {
  constructor(private readonly deps: ReleaseBudgetDeps) {}

  /**
   * Refuses what the approved plan does not allow: with DP, the ledger's plan limits and the silo's cap; releases
   * without DP (exact evaluation, plans without DP) are counted from the release files. A plan-limit refusal ends
   * this task only (TaskFailure); the cap ends this silo's part in the plan (StudyFailure).
   */
  check(ctx: PlanContext, request: ChargeRequest, exactEvaluation: boolean): void {
    const { task, plan, mechanism } = ctx;
    const releases = this.deps.releases;
    if (mechanism === null && request.trainingRounds) {
      const trained = releases.trainingReleases(task.studyId).filter((r) => r.header.planHash === task.planHash);
      if (trained.length + 1 > plan.training.rounds) {
        throw new TaskFailure(
          'PLAN_LIMIT_REACHED',
          `the approved plan has ${plan.training.rounds} training rounds; this silo has released ${trained.length} updates for it, and this would be one more`,
        );
      }
    }
    if (exactEvaluation) {
      const released =
        releases.trainingReleases(task.studyId).filter((r) => r.header.evaluation?.kind === 'exact').length +
        releases.evaluationReleases(task.studyId).filter((r) => r.report.evaluation?.kind === 'exact').length;
      const allowed = plannedEvaluationReleases(plan);
      if (released + 1 > allowed) {
        throw new TaskFailure(
          'PLAN_LIMIT_REACHED',
          `the approved plan allows ${allowed} exact evaluation releases; this would be release ${released + 1}`,
        );
      }
    }
    if (!charges(request) && !(mechanism === null && task.kind === 'train')) return;
    const refusal = this.deps.privacy.refusal(task.studyId, mechanism, request);
    if (refusal === null) return;
    if (refusal.code === 'PRIVACY_CAP_REACHED') throw new StudyFailure(refusal.code, refusal.message);
    throw new TaskFailure(refusal.code, refusal.message);
  }

  /** Charges the ledger (flushed) before the release is persisted and sent; null when nothing is charged. */
  charge(ctx: PlanContext, request: ChargeRequest, modelHash: string): PrivacySpend | null {
    const { task, plan, mechanism, name } = ctx;
    if (mechanism === null || !charges(request)) return null;
    let spend: PrivacySpend;
    try {
      spend = this.deps.privacy.charge(
        { studyId: task.studyId, studyName: plan.name, round: task.round, attempt: task.attempt, modelHash },
        mechanism,
        request,
        this.deps.clock(),
      );
    } catch (err) {
      // Checked before the work began; only another process charging meanwhile gets here. Nothing was charged.
      if (err instanceof ChargeRefusedError) throw new TaskFailure(err.refusal.code, err.refusal.message);
      throw err;
    }
    const parts = [
      request.trainingRounds ? `training round ${spend.trainingRounds} of ${mechanism.rounds}` : null,
      request.personalizations ? `personalization (${mechanism.personalizationSteps} DP-SGD steps)` : null,
      request.evaluationReleases
        ? `evaluation release ${spend.evaluationReleases} of ${mechanism.evaluation?.releases ?? 0} (noise stddev ${fmt(mechanism.evaluation?.noiseStddev ?? null, 3)} counts)`
        : null,
    ].filter((p) => p !== null);
    this.deps.log({
      study: name,
      round: task.round,
      message: `privacy charged: ${parts.join(' and ')}; ${spend.mechanism} (unit ${spend.unit}) σ ${fmt(spend.noiseMultiplier, 4)}, C ${spend.clipNorm}, q ${spend.samplingRate}, ${spend.steps} steps: study ε ${fmt(spend.epsilonCumulative, 4)} of ${mechanism.targetEpsilon} at δ ${mechanism.delta}`,
    });
    return spend;
  }
}

/** True when the request releases anything the ledger charges. */
function charges(request: ChargeRequest): boolean {
  return request.trainingRounds + request.evaluationReleases + (request.personalizations ?? 0) > 0;
}
