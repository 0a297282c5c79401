import {
  HubErrorCode,
  SILO_STUDY_API,
  SiloStudy,
  TasksResponse,
  UpdateReceipt,
  type DecisionRequest,
  type EvaluationReport,
  type FailureReport,
  type SiloTask,
} from '@tessera/protocol';
import { z } from 'zod';
import { AgentError, AgentErrorCode } from '../agent.error';
import { hubCodeOf, jsonOf, type HubRawResponse } from './hub-client';
import { rawAnswerOf, type SiloSession } from './silo-session';

/**
 * The agent's port to the hub's study routes. The daemon and the task executor depend on this interface only, so
 * tests drive them with an in-memory hub. Every method throws AgentError: HUB_UNREACHABLE (try again later),
 * IDENTITY_REFUSED (the certificate is no longer accepted: stop), or HUB_REFUSED with the HTTP status.
 */
export interface StudyTransport {
  listStudies(): Promise<SiloStudy[]>;
  decide(studyId: string, request: DecisionRequest): Promise<SiloStudy>;
  /** Long poll: waits up to `waitSeconds` for work; an empty list after the wait is normal. */
  pollTasks(waitSeconds: number, signal?: AbortSignal): Promise<SiloTask[]>;
  /** The global model's bytes (raw float32 LE); the caller verifies them against the task's model hash. */
  downloadModel(modelHash: string, expectedBytes: number): Promise<Uint8Array>;
  uploadUpdate(studyId: string, round: number, frame: Uint8Array): Promise<UpdateReceipt>;
  reportEvaluation(studyId: string, report: EvaluationReport): Promise<void>;
  reportFailure(studyId: string, report: FailureReport): Promise<void>;
}

/** Seconds a long poll's socket may stay idle beyond the wait before the agent gives up on it. */
const LONG_POLL_GRACE_SECONDS = 15;
/** Uploads and downloads of large models may take a while; the socket may idle this long (ms). */
const TRANSFER_TIMEOUT_MS = 120_000;

function messageOf(res: HubRawResponse): string {
  const body = jsonOf(res) as { message?: unknown } | string | undefined;
  if (typeof body === 'object' && body !== null && typeof body.message === 'string') return body.message;
  return `HTTP ${res.status}`;
}

/**
 * 403 codes that refuse one request of a silo the hub still accepts (it does not take part in that study), not the
 * silo itself: a refusal like any other, never a reason to stop the agent.
 */
const REQUEST_FORBIDDEN_CODES: readonly string[] = [HubErrorCode.NOT_A_PARTICIPANT];

/** Any 2xx: the contract says 200, and a framework's default 201 for a POST means the same. */
function succeeded(res: HubRawResponse): boolean {
  return res.status >= 200 && res.status < 300;
}

/** Statuses that mean "try again": the hub (503: database outage, storage not writable) or its proxy (502, 504). */
const TRANSIENT_STATUSES: readonly number[] = [502, 503, 504];
/** A Retry-After beyond this is not believed: the caller's own backoff and deadline apply (ms). */
const MAX_RETRY_AFTER_MS = 300_000;

/**
 * How an in-process StudyTransport (the privacy audit's hub, the tests' fake hub) answers: `answer` runs now, its
 * result resolves and its throw rejects, as they would over the network. The same as an `async` method without an
 * `await`, said on purpose.
 */
export function answerInProcess<T>(answer: () => T): Promise<T> {
  return new Promise<T>((resolve) => resolve(answer()));
}

/**
 * The hub cannot serve the call right now (503 with Retry-After, or a proxy's 502/504): HUB_UNREACHABLE, so every
 * caller retries it as it retries a network failure, with the wait the hub asked for when it named one.
 */
export class HubUnavailableError extends AgentError {
  constructor(
    message: string,
    httpStatus: number,
    /** The hub's Retry-After in ms (bounded), or null when it gave none. */
    readonly retryAfterMs: number | null,
  ) {
    super(AgentErrorCode.HUB_UNREACHABLE, message, httpStatus);
  }
}

/** Retry-After as ms: delta-seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterMsOf(value: string | undefined, now = Date.now()): number | null {
  if (value === undefined) return null;
  const seconds = /^\s*(\d+)\s*$/.exec(value);
  const ms = seconds ? Number(seconds[1]) * 1000 : Date.parse(value) - now;
  return Number.isFinite(ms) ? Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms)) : null;
}

/** The hub's time from its Date header (ms), or this host's when unreadable. */
function hubNowOf(date: string): number {
  const ms = Date.parse(date);
  return Number.isFinite(ms) ? ms : Date.now();
}

/**
 * 401/403 on the silo listener: the guard refused the certificate or the silo (revoked, suspended, …), except a 403
 * that only refuses this request (REQUEST_FORBIDDEN_CODES). Every refusal carries the hub's error code.
 */
function refused(res: HubRawResponse, what: string): AgentError {
  const message = messageOf(res);
  const hubCode = hubCodeOf(jsonOf(res));
  if (TRANSIENT_STATUSES.includes(res.status)) {
    return new HubUnavailableError(
      `The hub cannot take ${what} right now (HTTP ${res.status}: ${message}); trying again later.`,
      res.status,
      // Against the hub's own Date header when it sent one: an HTTP-date Retry-After is on the hub's clock.
      retryAfterMsOf(res.retryAfter, res.date === undefined ? Date.now() : hubNowOf(res.date)),
    );
  }
  const requestOnly = res.status === 403 && hubCode !== undefined && REQUEST_FORBIDDEN_CODES.includes(hubCode);
  if ((res.status === 401 || res.status === 403) && !requestOnly) {
    return new AgentError(
      AgentErrorCode.IDENTITY_REFUSED,
      `The hub no longer accepts this agent (${what}): ${message}`,
      res.status,
      hubCode,
    );
  }
  return new AgentError(AgentErrorCode.HUB_REFUSED, `The hub refused ${what}: ${message}`, res.status, hubCode);
}

function parsed<T>(schema: z.ZodType<T>, res: HubRawResponse, what: string): T {
  const result = schema.safeParse(jsonOf(res));
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new AgentError(
      AgentErrorCode.HUB_REFUSED,
      `The hub's answer to ${what} is not valid: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`,
      res.status,
    );
  }
  return result.data;
}

/**
 * The study routes over the session's mutual TLS. The JSON calls go through the session's typed client (the hub's
 * OpenAPI document checks their paths, parameters and bodies at compile time) and their answers through the zod
 * schemas as before; the model download and the update upload are binary streams and stay on request().
 */
export class SiloStudyTransport implements StudyTransport {
  constructor(private readonly session: SiloSession) {}

  async listStudies(): Promise<SiloStudy[]> {
    const res = rawAnswerOf((await this.session.api.GET('/silo/v1/studies', { parseAs: 'stream' })).response);
    if (!succeeded(res)) throw refused(res, 'the study list');
    return parsed(z.array(SiloStudy), res, 'the study list');
  }

  async decide(studyId: string, request: DecisionRequest): Promise<SiloStudy> {
    const { response } = await this.session.api.POST('/silo/v1/studies/{id}/decision', {
      params: { path: { id: studyId } },
      body: request,
      parseAs: 'stream',
    });
    const res = rawAnswerOf(response);
    if (!succeeded(res)) throw refused(res, `the decision on study ${studyId}`);
    return parsed(SiloStudy, res, 'the decision');
  }

  async pollTasks(waitSeconds: number, signal?: AbortSignal): Promise<SiloTask[]> {
    const api = this.session.apiWith({
      timeoutMs: (waitSeconds + LONG_POLL_GRACE_SECONDS) * 1000,
      ...(signal ? { signal } : {}),
    });
    const { response } = await api.GET('/silo/v1/tasks', {
      params: { query: { wait: waitSeconds } },
      parseAs: 'stream',
    });
    const res = rawAnswerOf(response);
    if (!succeeded(res)) throw refused(res, 'the task poll');
    return parsed(TasksResponse, res, 'the task poll').tasks;
  }

  async downloadModel(modelHash: string, expectedBytes: number): Promise<Uint8Array> {
    const res = await this.session.request('GET', SILO_STUDY_API.blob(modelHash), {
      accept: 'application/octet-stream',
      timeoutMs: TRANSFER_TIMEOUT_MS,
      // A few bytes of slack so a wrong-sized model is reported as such rather than cut off.
      maxResponseBytes: expectedBytes + 1024,
    });
    if (!succeeded(res)) throw refused(res, `the model ${modelHash.slice(0, 12)}…`);
    return res.bytes;
  }

  async uploadUpdate(studyId: string, round: number, frame: Uint8Array): Promise<UpdateReceipt> {
    const res = await this.session.request('POST', SILO_STUDY_API.update(studyId, round), {
      body: { bytes: frame, contentType: 'application/octet-stream' },
      timeoutMs: TRANSFER_TIMEOUT_MS,
    });
    if (!succeeded(res)) throw refused(res, `the update for round ${round}`);
    return parsed(UpdateReceipt, res, 'the update');
  }

  async reportEvaluation(studyId: string, report: EvaluationReport): Promise<void> {
    const { response } = await this.session.api.POST('/silo/v1/studies/{id}/rounds/{round}/evaluation', {
      params: { path: { id: studyId, round: report.round } },
      body: report,
      parseAs: 'stream',
    });
    const res = rawAnswerOf(response);
    if (!succeeded(res)) throw refused(res, `the evaluation of round ${report.round}`);
  }

  async reportFailure(studyId: string, report: FailureReport): Promise<void> {
    const { response } = await this.session.api.POST('/silo/v1/studies/{id}/rounds/{round}/failure', {
      params: { path: { id: studyId, round: report.round } },
      body: report,
      parseAs: 'stream',
    });
    const res = rawAnswerOf(response);
    if (!succeeded(res)) throw refused(res, `the failure report for round ${report.round}`);
  }
}
