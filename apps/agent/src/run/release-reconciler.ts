import { sha256Hex, type UpdateReceipt } from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';
import type { StudyTransport } from '../hub/study-transport';
import type { ReceiptStore } from '../state/receipt-store';
import {
  reframeForAttempt,
  type EvaluationRelease,
  type ReleaseStore,
  type TrainingRelease,
} from '../state/release-store';
import { describeSettlement, settlementOfRefusal } from './hub-delivery';
import type { StepLog } from './task-executor';

/** One sending of a persisted release that no receipt covers and nothing settled: the hub is asked about it again. */
export type UnansweredSending =
  | { kind: 'update'; release: TrainingRelease; attempt: number; frame: Uint8Array }
  | { kind: 'evaluation'; release: EvaluationRelease; attempt: number };

/** What one pass over a study's releases found out. */
export interface ReconcileSummary {
  /** Receipts the hub answered with (stored like any receipt). */
  receipts: number;
  /** Sendings now settled: acknowledged evaluation reports, rounds closed without them, refusals for good. */
  settled: number;
  /** Sendings the hub's answer did not settle (asked about again before the study's next task or at a restart). */
  unsettled: number;
}

export interface ReleaseReconcilerDeps {
  transport: StudyTransport;
  receipts: ReceiptStore;
  releases: ReleaseStore;
  log: StepLog;
  clock?: () => Date;
}

/**
 * Brings what the silo knows of its releases in line with what the hub holds (docs/silo-guide.md, "Releases"). An
 * agent killed after the hub accepted its update but before it read the receipt has a release on file and no
 * receipt, and the hub offers no task for that round again. The daemon runs this when it starts and before it takes
 * a study's next task: every persisted release (training update or evaluation report) that no receipt covers and
 * that is not settled is sent again, exactly as stored (only `attempt` re-stamped as it was when sent: never
 * retrained, never re-noised, never charged again), once for each attempt it was sent as.
 *
 * - a receipt (the hub answers an accepted update with its original receipt, also after the round closed) is
 *   stored like any receipt, and the audited transport logs the upload with it to the agent's audit log;
 * - a refusal that settles the release (hub-delivery.ts, settlementOfRefusal: the round closed without it, refused
 *   for good, an evaluation report the hub already holds) is recorded beside the release, which stays on file, and
 *   logged; it is not sent again on the agent's own;
 * - HUB_UNREACHABLE (network, 503) ends the pass with that error: the daemon retries with its backoff, and the
 *   releases are sent again then; any other answer leaves the release unsettled until the next pass.
 */
export class ReleaseReconciler {
  private readonly clock: () => Date;

  constructor(private readonly deps: ReleaseReconcilerDeps) {
    this.clock = deps.clock ?? (() => new Date());
  }

  /** Studies with releases on file (their ids). */
  studies(): string[] {
    return this.deps.releases.studies();
  }

  /** The sendings of a study's releases that no receipt covers and nothing settled, oldest round first. */
  unanswered(studyId: string): UnansweredSending[] {
    const { releases, receipts } = this.deps;
    const out: UnansweredSending[] = [];
    for (const release of releases.trainingReleases(studyId)) {
      const held = receipts.forRound(studyId, release.header.round);
      for (const s of releases.sendings(release.file, release.header.attempt)) {
        if (s.settled !== null) continue;
        const frame = reframeForAttempt(release.frame, s.attempt);
        if (!held.some((r) => covers(r, release, s.attempt, frame))) {
          out.push({ kind: 'update', release, attempt: s.attempt, frame });
        }
      }
    }
    for (const release of releases.evaluationReleases(studyId)) {
      // A report carries no receipt and is sent as made: one sending, settled once the hub acknowledged it.
      const madeFor = release.report.attempt;
      const settled = releases.sendings(release.file, madeFor).find((s) => s.attempt === madeFor)?.settled ?? null;
      if (settled === null) out.push({ kind: 'evaluation', release, attempt: madeFor });
    }
    return out.sort((a, b) => roundOf(a) - roundOf(b) || a.attempt - b.attempt);
  }

  /**
   * Sends every unanswered sending of the study's releases again and records each answer. `name` names the study in
   * the log. Throws HUB_UNREACHABLE when the hub cannot be reached (the rest waits for the daemon's next try), and
   * IDENTITY_REFUSED or STATE_CORRUPT as everywhere else.
   */
  async resend(studyId: string, name = studyId): Promise<ReconcileSummary> {
    const summary: ReconcileSummary = { receipts: 0, settled: 0, unsettled: 0 };
    const pending = this.unanswered(studyId);
    if (pending.length === 0) return summary;
    this.deps.log({
      study: name,
      message: `${pending.length} release(s) on file without a receipt or an answer from the hub: sending them again as stored (no retraining, no new privacy charge)`,
    });
    for (const sending of pending) {
      const answer = await this.send(studyId, name, sending);
      summary[answer] += 1;
    }
    return summary;
  }

  private async send(studyId: string, name: string, sending: UnansweredSending): Promise<keyof ReconcileSummary> {
    const { transport, releases, receipts, log } = this.deps;
    const round = roundOf(sending);
    try {
      if (sending.kind === 'update') {
        const receipt = await transport.uploadUpdate(studyId, round, sending.frame);
        this.checkReceipt(studyId, name, sending, receipt);
        const file = receipts.save(receipt);
        log({
          study: name,
          round,
          message: `the hub holds the update sent as attempt ${sending.attempt} (sha256 ${sha256Hex(sending.frame).slice(0, 12)}…): its receipt for attempt ${receipt.attempt}, received ${receipt.receivedAt}, is saved (${file})`,
        });
        return 'receipts';
      }
      await transport.reportEvaluation(studyId, sending.release.report);
      releases.settle(sending.release.file, sending.attempt, {
        outcome: 'reported',
        hubCode: null,
        message: 'accepted by the hub when sent again',
        settledAt: this.clock().toISOString(),
      });
      log({ study: name, round, message: 'the evaluation report sent again was accepted by the hub: settled' });
      return 'settled';
    } catch (err) {
      if (!(err instanceof AgentError) || err.code !== AgentErrorCode.HUB_REFUSED) throw err;
      const what = sending.kind === 'update' ? 'update' : 'evaluation';
      const settlement = settlementOfRefusal(err, what, this.clock());
      if (settlement === null) {
        log({
          study: name,
          round,
          message: `the ${what} sent again as attempt ${sending.attempt} stays unsettled: ${err.message}; asked about again before this study's next task or at the next start`,
        });
        return 'unsettled';
      }
      releases.settle(sending.release.file, sending.attempt, settlement);
      log({
        study: name,
        round,
        message: `the ${what} sent again as attempt ${sending.attempt} ${describeSettlement(settlement, what)}`,
      });
      return 'settled';
    }
  }

  /** A receipt for something else than what was sent is stored all the same (the hub's word), with a warning. */
  private checkReceipt(
    studyId: string,
    name: string,
    sending: Extract<UnansweredSending, { kind: 'update' }>,
    receipt: UpdateReceipt,
  ): void {
    if (receipt.studyId === studyId && covers(receipt, sending.release, sending.attempt, sending.frame)) return;
    this.deps.log({
      study: name,
      round: sending.release.header.round,
      message: `WARNING: the hub's receipt names study ${receipt.studyId} round ${receipt.round} update ${receipt.updateSha256.slice(0, 12)}…, not the update sent again (sha256 ${sha256Hex(sending.frame).slice(0, 12)}…)`,
    });
  }
}

/**
 * Whether a receipt is the hub's answer to this sending of a release: it names the SHA-256 of the frame as sent (the
 * hub's convention), or the payload's SHA-256 for the same round and attempt (an answer naming only the payload).
 */
function covers(receipt: UpdateReceipt, release: TrainingRelease, attempt: number, frame: Uint8Array): boolean {
  if (receipt.round !== release.header.round) return false;
  if (receipt.updateSha256 === sha256Hex(frame)) return true;
  return receipt.updateSha256 === release.header.payloadSha256 && receipt.attempt === attempt;
}

function roundOf(sending: UnansweredSending): number {
  return sending.kind === 'update' ? sending.release.header.round : sending.release.report.round;
}
