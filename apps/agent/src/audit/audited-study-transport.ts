import { AgentAuditAction, canonicalJson, verifyReceipt, type JsonObject } from '@tessera/audit';
import {
  decodeUpdateFrame,
  sha256Hex,
  type DecisionRequest,
  type EvaluationReport,
  type FailureReport,
  type SiloStudy,
  type SiloTask,
  type UpdateHeader,
  type UpdateReceipt,
  UpdateFrameError,
} from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';
import type { StudyTransport } from '../hub/study-transport';
import type { AgentAuditLog } from './agent-audit-log';
import type { PinnedHubKey } from './hub-audit-key';

/** Failure codes that mean this silo refused the work itself (rather than could not do it). */
const REFUSALS: readonly FailureReport['code'][] = ['PLAN_NOT_APPROVED', 'PRIVACY_CAP_REACHED', 'PLAN_LIMIT_REACHED'];

export type ReceiptCheck = 'valid' | 'invalid' | 'unverified';

export interface AuditedTransportOptions {
  /** Who takes decisions through this transport: a steward at the CLI, or the daemon's approval policy. */
  decidedBy: 'steward' | 'policy';
  /** The hub key receipts are verified against; null until one is pinned. */
  hubKey?: () => PinnedHubKey | null;
  /** Where warnings go (an invalid receipt); the daemon's log. */
  warn?: (message: string) => void;
}

/** The frame's header, or null for a frame the hub will refuse anyway (the upload goes ahead unchanged). */
function headerOf(frame: Uint8Array): UpdateHeader | null {
  try {
    return decodeUpdateFrame(frame).header;
  } catch (err) {
    if (err instanceof UpdateFrameError) return null;
    throw err;
  }
}

/** Plain JSON of a protocol value (zod-parsed objects are plain already; this drops any undefined member). */
function json<T>(value: T): JsonObject {
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}

/**
 * The agent's audit hook: a StudyTransport that writes every study-relevant exchange with the hub to the agent's
 * own log — decisions, tasks received, model downloads, uploads with the hub's signed receipt (verified against
 * the pinned hub key when there is one), privacy spent, evaluations, failures and refusals. The task executor and
 * the daemon are unchanged: they are handed this transport instead of the bare one. Each record is on disk before
 * the call returns, so the log never claims less than what happened (a crash can leave it claiming an upload the
 * hub then lost: reconciliation names that).
 */
export class AuditedStudyTransport implements StudyTransport {
  private readonly seenTasks = new Set<string>();
  private readonly spent = new Set<string>();

  constructor(
    private readonly inner: StudyTransport,
    readonly log: AgentAuditLog,
    private readonly options: AuditedTransportOptions,
  ) {}

  listStudies(): Promise<SiloStudy[]> {
    return this.inner.listStudies();
  }

  async decide(studyId: string, request: DecisionRequest): Promise<SiloStudy> {
    const study = await this.inner.decide(studyId, request);
    this.log.append(
      request.decision === 'approve' ? AgentAuditAction.PlanApproved : AgentAuditAction.PlanRejected,
      { studyId },
      {
        planHash: request.planHash,
        planVersion: study.planVersion,
        studyName: study.plan.name,
        decidedBy: this.options.decidedBy,
        ...(request.reason === undefined ? {} : { reason: request.reason }),
      },
    );
    return study;
  }

  async pollTasks(waitSeconds: number, signal?: AbortSignal): Promise<SiloTask[]> {
    const tasks = await this.inner.pollTasks(waitSeconds, signal);
    for (const t of tasks) {
      // The hub offers a task again until it is settled: recorded once per process.
      const key = `${t.studyId}/${t.round}/${t.attempt}/${t.kind}`;
      if (this.seenTasks.has(key)) continue;
      this.seenTasks.add(key);
      this.log.append(
        AgentAuditAction.TaskReceived,
        { studyId: t.studyId },
        {
          round: t.round,
          attempt: t.attempt,
          kind: t.kind,
          planHash: t.planHash,
          planVersion: t.planVersion,
          modelHash: t.modelHash,
          deadlineAt: t.deadlineAt,
        },
      );
    }
    return tasks;
  }

  async downloadModel(modelHash: string, expectedBytes: number): Promise<Uint8Array> {
    const bytes = await this.inner.downloadModel(modelHash, expectedBytes);
    const sha256 = sha256Hex(bytes);
    this.log.append(
      AgentAuditAction.ModelDownloaded,
      {},
      { modelHash, sha256, bytes: bytes.byteLength, verified: sha256 === modelHash },
    );
    return bytes;
  }

  async uploadUpdate(studyId: string, round: number, frame: Uint8Array): Promise<UpdateReceipt> {
    const header = headerOf(frame);
    const updateSha256 = sha256Hex(frame);
    if (header !== null) this.recordSpend(studyId, header);
    let receipt: UpdateReceipt;
    try {
      receipt = await this.inner.uploadUpdate(studyId, round, frame);
    } catch (err) {
      // A refusal is final and recorded; "try again" (unreachable, 503) is not a refusal.
      if (err instanceof AgentError && err.code === AgentErrorCode.HUB_REFUSED && err.httpStatus !== undefined) {
        this.log.append(
          AgentAuditAction.UpdateRefused,
          { studyId },
          {
            round,
            attempt: header?.attempt ?? null,
            updateSha256,
            httpStatus: err.httpStatus,
            // The hub's reason as a code (ROUND_CLOSED: the round closed without this update), when it named one.
            code: err.hubCode ?? null,
            message: err.message,
          },
        );
      }
      throw err;
    }
    const check = this.checkReceipt(receipt);
    this.log.append(
      AgentAuditAction.UpdateUploaded,
      { studyId },
      {
        round,
        attempt: receipt.attempt,
        // What the hub names the update: the SHA-256 of the whole framed upload (header and payload).
        updateSha256,
        bytes: frame.byteLength,
        ...(header === null
          ? {}
          : {
              payloadSha256: header.payloadSha256,
              numExamples: header.numExamples,
              planHash: header.planHash,
              baseModelHash: header.baseModelHash,
            }),
        receipt: json(receipt),
        receiptCheck: check,
        ...(check === 'unverified' ? {} : { receiptKeyId: this.options.hubKey?.()?.keyId ?? null }),
      },
    );
    return receipt;
  }

  async reportEvaluation(studyId: string, report: EvaluationReport): Promise<void> {
    await this.inner.reportEvaluation(studyId, report);
    this.log.append(
      AgentAuditAction.EvaluationReported,
      { studyId },
      {
        round: report.round,
        attempt: report.attempt,
        modelHash: report.modelHash,
        evaluation: report.evaluation === null ? null : json(report.evaluation),
        privacy: report.privacy === null ? null : json(report.privacy),
      },
    );
  }

  async reportFailure(studyId: string, report: FailureReport): Promise<void> {
    const details = { round: report.round, attempt: report.attempt, code: report.code, message: report.message };
    if (REFUSALS.includes(report.code)) this.log.append(AgentAuditAction.TaskRefused, { studyId }, details);
    try {
      await this.inner.reportFailure(studyId, report);
    } catch (err) {
      this.log.append(AgentAuditAction.FailureReported, { studyId }, { ...details, delivered: false });
      throw err;
    }
    this.log.append(AgentAuditAction.FailureReported, { studyId }, { ...details, delivered: true });
  }

  /**
   * The spend an update carries, recorded at its first upload in this process. Retries, later attempts and restarts
   * re-send the same release (same payload hash, same figures): the ledger charged it once, and an auditor matches
   * repeated records by payloadSha256.
   */
  private recordSpend(studyId: string, header: UpdateHeader): void {
    if (header.privacy === null) return;
    const key = `${studyId}/${header.round}/${header.baseModelHash}/${header.payloadSha256}`;
    if (this.spent.has(key)) return;
    this.spent.add(key);
    this.log.append(
      AgentAuditAction.BudgetSpent,
      { studyId },
      {
        round: header.round,
        attempt: header.attempt,
        baseModelHash: header.baseModelHash,
        payloadSha256: header.payloadSha256,
        privacy: json(header.privacy),
      },
    );
  }

  private checkReceipt(receipt: UpdateReceipt): ReceiptCheck {
    const key = this.options.hubKey?.() ?? null;
    if (key === null || receipt.signature === undefined) return 'unverified';
    const result = verifyReceipt(receipt.signature, key.publicKeyPem);
    const { signature: _signed, ...fields } = receipt;
    const payload = (receipt.signature as { payload?: unknown }).payload;
    // The signature must cover exactly the receipt the hub answered with, not some other payload.
    if (result.ok && canonicalJson(json(payload)) === canonicalJson(json(fields))) return 'valid';
    this.options.warn?.(
      `WARNING: the hub's receipt for update of study ${receipt.studyId} round ${receipt.round} does not verify under the pinned hub key ${key.keyId.slice(0, 12)}…${result.ok ? ' (its signed payload differs)' : `: ${result.message}`}`,
    );
    return 'invalid';
  }
}
