import { randomUUID } from 'node:crypto';
import {
  decodeUpdateFrame,
  type DecisionRequest,
  type EvaluationReport,
  type FailureReport,
  type SiloStudy,
  type SiloTask,
  type UpdateReceipt,
} from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';
import { answerInProcess, type StudyTransport } from '../hub/study-transport';

/**
 * The privacy audit's only seam: an in-memory hub behind the agent's StudyTransport port. It serves one study and one
 * model, and keeps what the agent released (the framed update, the evaluation report, a failure report) exactly as
 * the hub would receive it: the audit's adversary reads these bytes and nothing else of the silo. Everything the
 * agent does before the bytes leave (data preparation, clipping, lattice noise, ledger, release store) is the real
 * code.
 */
export class AuditHubTransport implements StudyTransport {
  readonly siloId = randomUUID();
  /** Every frame the agent uploaded, as it left the silo. */
  readonly uploads: Uint8Array[] = [];
  readonly evaluations: EvaluationReport[] = [];
  readonly failures: FailureReport[] = [];

  constructor(
    private readonly study: SiloStudy,
    private readonly modelHash: string,
    private readonly modelBytes: Uint8Array,
  ) {}

  listStudies(): Promise<SiloStudy[]> {
    return answerInProcess(() => [this.study]);
  }

  decide(_studyId: string, _request: DecisionRequest): Promise<SiloStudy> {
    return answerInProcess(() => {
      // The audit records the silo's approval in its own approval store; the hub is never asked.
      throw new AgentError(AgentErrorCode.HUB_REFUSED, 'the audit hub takes no decisions', 405);
    });
  }

  pollTasks(): Promise<SiloTask[]> {
    return answerInProcess(() => []);
  }

  downloadModel(modelHash: string): Promise<Uint8Array> {
    return answerInProcess(() => {
      if (modelHash !== this.modelHash) {
        throw new AgentError(AgentErrorCode.HUB_REFUSED, 'The hub refused the model: not found', 404);
      }
      return Uint8Array.from(this.modelBytes);
    });
  }

  uploadUpdate(studyId: string, round: number, frame: Uint8Array): Promise<UpdateReceipt> {
    return answerInProcess(() => {
      const copy = Uint8Array.from(frame);
      const { header } = decodeUpdateFrame(copy);
      this.uploads.push(copy);
      return {
        studyId,
        siloId: this.siloId,
        round,
        attempt: header.attempt,
        updateSha256: header.payloadSha256,
        receivedAt: new Date().toISOString(),
      };
    });
  }

  reportEvaluation(_studyId: string, report: EvaluationReport): Promise<void> {
    return answerInProcess(() => {
      this.evaluations.push(structuredClone(report));
    });
  }

  reportFailure(_studyId: string, report: FailureReport): Promise<void> {
    return answerInProcess(() => {
      this.failures.push(report);
    });
  }
}
