import {
  HUB_API,
  type AuditEventPageView,
  type AuditEventQuery,
  type AuditSigningKeyView,
  type AuditVerificationView,
  type CurrentUserView,
  type EnrollmentIssuedView,
  type HubPublicKeyView,
  type ModelFileName,
  type ReportFileName,
  type RoundView,
  type SessionView,
  type SiloDetailView,
  type SiloPrivacyView,
  type SiloView,
  type StudyPlan,
  type StudyView,
  type UserRole,
  type UserView,
  type CertificateView,
  type Checkpoint,
  REPORT_HEAD_HEADERS,
} from '@tessera/protocol';
import { ApiError, apiErrorOf } from './api-error.js';
import { ConsoleErrorCode } from './error-guidance.js';

/** Supplies the bearer token of the current session (null when signed out). */
export type TokenSource = () => string | null;

/** A downloaded file: its bytes and the name the hub suggests. */
export interface DownloadedFile {
  blob: Blob;
  fileName: string;
  /** The hub's x-model-sha256 header, for model files. */
  sha256: string | null;
  /** The audit chain head a compliance report covers (x-audit-head-seq and -hash), for report files. */
  head?: { seq: number; hash: string } | null;
}

/** What a compliance report check found: available, or the hub's reason (typically a 404 message). */
export type ReportAvailability = { available: true } | { available: false; message: string; status: number };

function queryString(query: object): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

function fileNameOf(res: Response, fallback: string): string {
  const disposition = res.headers.get('content-disposition') ?? '';
  const match = /filename="?([^";]+)"?/i.exec(disposition);
  return match?.[1] ?? fallback;
}

/**
 * Runs when a request with a token answers 401 (the access token expired, or the session ended). Resolves true when
 * it renewed the session: the request is then sent once more, with the new token.
 */
export type UnauthorizedHandler = () => Promise<boolean> | boolean | void;

export interface SendOptions {
  json?: unknown;
  signal?: AbortSignal;
  /** Sign-in, refresh and sign-out: no bearer token, and a 401 is the answer itself, not an expired session. */
  anonymous?: boolean;
}

/**
 * The console's typed client of the hub's /api: every call sends the session's bearer token, and every failure
 * becomes an ApiError carrying the hub's message. `onUnauthorized` runs on a 401 (see UnauthorizedHandler).
 */
export class ApiClient {
  constructor(
    private readonly token: TokenSource,
    private readonly onUnauthorized: UnauthorizedHandler = () => undefined,
    private readonly baseUrl = '',
  ) {}

  /** Sends a request; resolves with the raw response when it succeeded, throws ApiError otherwise. */
  async send(method: string, path: string, init: SendOptions = {}, retried = false): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const token = init.anonymous ? null : this.token();
    if (token) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, { method, headers, body, signal: init.signal });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw new ApiError(
        0,
        ConsoleErrorCode.NETWORK_ERROR,
        `The hub could not be reached (${(err as Error).message}).`,
      );
    }
    if (!res.ok) {
      const error = await apiErrorOf(res);
      if (res.status === 401 && token) {
        const renewed = await this.onUnauthorized();
        if (renewed === true && !retried && this.token() !== token) return this.send(method, path, init, true);
      }
      throw error;
    }
    return res;
  }

  async json<T>(method: string, path: string, json?: unknown, options: Omit<SendOptions, 'json'> = {}): Promise<T> {
    const res = await this.send(method, path, { ...options, json });
    try {
      return (await res.json()) as T;
    } catch {
      throw new ApiError(
        res.status,
        ConsoleErrorCode.BAD_RESPONSE,
        `The hub's answer to ${method} ${path} was not JSON.`,
      );
    }
  }

  /* ---------- session ---------- */

  login(username: string, password: string): Promise<SessionView> {
    return this.json('POST', HUB_API.login, { username, password }, { anonymous: true });
  }

  /** Trades the refresh cookie (httpOnly, sent by the browser) for a new access token and a new cookie. */
  refresh(): Promise<SessionView> {
    return this.json('POST', HUB_API.refresh, undefined, { anonymous: true });
  }

  /** Ends the session on the hub (the cookie says which) and clears the cookie. */
  async logout(): Promise<void> {
    await this.send('POST', HUB_API.logout, { anonymous: true });
  }

  me(): Promise<CurrentUserView> {
    return this.json('GET', HUB_API.me);
  }

  /** Changes one's own password; every session ends and a new one is answered. */
  changePassword(currentPassword: string, newPassword: string): Promise<SessionView> {
    return this.json('POST', HUB_API.password, { currentPassword, newPassword });
  }

  /* ---------- people ---------- */

  users(): Promise<UserView[]> {
    return this.json('GET', HUB_API.users);
  }

  createUser(input: {
    username: string;
    password: string;
    role: UserRole;
    mustChangePassword?: boolean;
  }): Promise<UserView> {
    return this.json('POST', HUB_API.users, input);
  }

  updateUser(id: string, change: { role?: UserRole; disabled?: boolean }): Promise<UserView> {
    return this.json('PATCH', HUB_API.user(id), change);
  }

  /** Sets a temporary password: the person's sessions end and their next sign-in must change it. */
  resetPassword(id: string, password: string): Promise<UserView> {
    return this.json('POST', HUB_API.userPassword(id), { password });
  }

  revokeSessions(id: string): Promise<UserView> {
    return this.json('DELETE', HUB_API.userSessions(id));
  }

  /* ---------- silos ---------- */

  silos(): Promise<SiloView[]> {
    return this.json('GET', HUB_API.silos);
  }

  silo(id: string): Promise<SiloDetailView> {
    return this.json('GET', HUB_API.silo(id));
  }

  registerSilo(input: { name: string; contact: string }): Promise<EnrollmentIssuedView> {
    return this.json('POST', HUB_API.silos, input);
  }

  reEnrollSilo(id: string): Promise<EnrollmentIssuedView> {
    return this.json('POST', HUB_API.siloEnrollment(id));
  }

  suspendSilo(id: string, reason: string): Promise<SiloView> {
    return this.json('POST', HUB_API.siloSuspend(id), { reason });
  }

  resumeSilo(id: string): Promise<SiloView> {
    return this.json('POST', HUB_API.siloResume(id));
  }

  revokeCertificate(id: string, serial: string, reason: string): Promise<CertificateView> {
    return this.json('POST', HUB_API.siloRevoke(id, serial), { reason });
  }

  /** What every study has spent on one silo's data (the hub's ledger), with the basic-composition total. */
  siloPrivacy(id: string): Promise<SiloPrivacyView> {
    return this.json('GET', HUB_API.siloPrivacy(id));
  }

  /* ---------- studies ---------- */

  studies(): Promise<StudyView[]> {
    return this.json('GET', HUB_API.studies);
  }

  study(id: string): Promise<StudyView> {
    return this.json('GET', HUB_API.study(id));
  }

  rounds(id: string): Promise<RoundView[]> {
    return this.json('GET', HUB_API.studyRounds(id));
  }

  createStudy(plan: unknown): Promise<StudyView> {
    return this.json('POST', HUB_API.studies, { plan });
  }

  updatePlan(id: string, plan: StudyPlan | unknown): Promise<StudyView> {
    return this.json('PUT', HUB_API.studyPlan(id), { plan });
  }

  submitStudy(id: string): Promise<StudyView> {
    return this.json('POST', HUB_API.studySubmit(id));
  }

  startStudy(id: string): Promise<StudyView> {
    return this.json('POST', HUB_API.studyStart(id));
  }

  stopStudy(id: string, reason: string): Promise<StudyView> {
    return this.json('POST', HUB_API.studyStop(id), { reason });
  }

  /** Downloads a file with the bearer header (a plain link could not send it). */
  async download(path: string, fallbackName: string): Promise<DownloadedFile> {
    const res = await this.send('GET', path);
    return {
      blob: await res.blob(),
      fileName: fileNameOf(res, fallbackName),
      sha256: res.headers.get('x-model-sha256'),
    };
  }

  modelFile(id: string, file: ModelFileName): Promise<DownloadedFile> {
    return this.download(HUB_API.studyModel(id, file), file);
  }

  /** A compliance report file, up to the chain head `upTo` (a seq an earlier download named) or the current one. */
  async reportFile(id: string, file: ReportFileName, upTo?: number): Promise<DownloadedFile> {
    const res = await this.send('GET', `${HUB_API.studyReport(id, file)}${queryString({ upTo })}`);
    const seq = Number(res.headers.get(REPORT_HEAD_HEADERS.seq));
    const hash = res.headers.get(REPORT_HEAD_HEADERS.hash);
    return {
      blob: await res.blob(),
      fileName: fileNameOf(res, file),
      sha256: res.headers.get('x-report-sha256'),
      head: Number.isSafeInteger(seq) && seq > 0 && hash ? { seq, hash } : null,
    };
  }

  /**
   * Whether this hub serves compliance reports, from its OpenAPI document: a HEAD or GET on the report itself would
   * render it and record an export in the audit trail, which merely opening a page must not do.
   */
  async reportAvailability(file: ReportFileName = 'report.pdf'): Promise<ReportAvailability> {
    const doc = await this.json<{ paths?: Record<string, unknown> }>('GET', HUB_API.openApi);
    const path = HUB_API.studyReport('{id}', file);
    if (doc.paths && path in doc.paths) return { available: true };
    return {
      available: false,
      status: 404,
      message: `This hub does not serve GET ${path} yet (it is not in its API description).`,
    };
  }

  /* ---------- audit ---------- */

  auditEvents(query: AuditEventQuery): Promise<AuditEventPageView> {
    return this.json('GET', `${HUB_API.auditEvents}${queryString(query)}`);
  }

  auditEventsCsv(query: AuditEventQuery): Promise<DownloadedFile> {
    const { limit: _limit, cursor: _cursor, order: _order, ...filters } = query;
    return this.download(`${HUB_API.auditEventsCsv}${queryString(filters)}`, 'tessera-audit-events.csv');
  }

  verifyAudit(): Promise<AuditVerificationView> {
    return this.json('GET', HUB_API.auditVerify);
  }

  checkpoints(): Promise<Checkpoint[]> {
    return this.json('GET', HUB_API.auditCheckpoints);
  }

  auditPublicKey(): Promise<HubPublicKeyView> {
    return this.json('GET', HUB_API.auditPublicKey);
  }

  auditPublicKeys(): Promise<AuditSigningKeyView[]> {
    return this.json('GET', HUB_API.auditPublicKeys);
  }

  /** The hub's current audit key as hub-public.pem (for `tessera-verify --public-key`). */
  auditPublicKeyPem(): Promise<DownloadedFile> {
    return this.download(HUB_API.auditPublicKeyPem, 'hub-public.pem');
  }
}
