import {
  HUB_API,
  type HubApiPaths,
  type AuditEventPageView,
  type AuditEventQuery,
  type AuditSigningKeyView,
  type AuditVerificationView,
  type CurrentUserView,
  type EnrollmentIssuedView,
  type HubPublicKeyView,
  type ModelFileName,
  type OidcSignInOptionsView,
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
import createClient, { type Client } from 'openapi-fetch';
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

/** The query's given values: absent, null and empty ones are left out (as queryString does). */
function given<T extends object>(query: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== ''),
  ) as Partial<T>;
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

/** The hub's API as openapi-fetch types it from the committed OpenAPI document (libs/protocol hub-api.generated.ts). */
export type HubApi = Client<HubApiPaths>;

/**
 * openapi-fetch builds a Request, which needs an absolute URL outside a browser (the console's specs run in Node); only
 * the path and query of it are used: forward() sends them relative to the client's baseUrl, as every call did.
 */
const REQUEST_ORIGIN = 'http://hub.invalid';

/**
 * The console's typed client of the hub's /api: every call sends the session's bearer token, and every failure
 * becomes an ApiError carrying the hub's message. `onUnauthorized` runs on a 401 (see UnauthorizedHandler).
 * JSON calls go through `api`, an openapi-fetch client typed by the hub's OpenAPI document (paths, parameters,
 * bodies and answers are checked at compile time); its requests travel through send(), so the bearer token, the
 * renewal on a 401 and the error mapping are the same for every call. Downloads use send() directly.
 */
export class ApiClient {
  /** Typed calls with the session's token. */
  readonly api: HubApi;
  /** Typed calls without it (sign-in, refresh, sign-out): a 401 there is the answer, not an expired session. */
  private readonly anonymousApi: HubApi;

  constructor(
    private readonly token: TokenSource,
    private readonly onUnauthorized: UnauthorizedHandler = () => undefined,
    private readonly baseUrl = '',
  ) {
    this.api = createClient<HubApiPaths>({ baseUrl: REQUEST_ORIGIN, fetch: (r) => this.forward(r, false) });
    this.anonymousApi = createClient<HubApiPaths>({ baseUrl: REQUEST_ORIGIN, fetch: (r) => this.forward(r, true) });
  }

  /**
   * Sends an openapi-fetch request through send(): its method, path, query and JSON body. An answer that should be
   * JSON and is not becomes ApiError BAD_RESPONSE here, as json() does.
   */
  private async forward(request: Request, anonymous: boolean): Promise<Response> {
    const url = new URL(request.url);
    const path = `${url.pathname}${url.search}`;
    const text = request.body === null ? '' : await request.text();
    const res = await this.send(request.method, path, {
      ...(text === '' ? {} : { json: JSON.parse(text) as unknown }),
      anonymous,
    });
    const body = await res.clone().text();
    if (body !== '' && res.status !== 204) {
      try {
        JSON.parse(body);
      } catch {
        throw new ApiError(
          res.status,
          ConsoleErrorCode.BAD_RESPONSE,
          `The hub's answer to ${request.method} ${path} was not JSON.`,
        );
      }
    }
    return res;
  }

  /**
   * The body of a typed call's answer; send() has already turned every failure into an ApiError. Typed as the view of
   * @tessera/protocol the route answers: openapi-fetch widens the document's tuples to arrays in its answer types, so
   * the document's own schemas are checked against those views instead (hub-api-views.ts).
   */
  private async answer<View>(call: Promise<{ data?: unknown; response: Response }>): Promise<View> {
    const { data, response } = await call;
    if (data === undefined) {
      throw new ApiError(
        response.status,
        ConsoleErrorCode.BAD_RESPONSE,
        `The hub's answer to ${response.url} was empty.`,
      );
    }
    return data as View;
  }

  /** The body of a typed call made on `api`, as the view `View` (see answer): for the console's feature modules. */
  read<View>(call: Promise<{ data?: unknown; response: Response }>): Promise<View> {
    return this.answer<View>(call);
  }

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
    return this.answer<SessionView>(this.anonymousApi.POST('/api/auth/login', { body: { username, password } }));
  }

  /** Trades the refresh cookie (httpOnly, sent by the browser) for a new access token and a new cookie. */
  refresh(): Promise<SessionView> {
    return this.answer<SessionView>(this.anonymousApi.POST('/api/auth/refresh'));
  }

  /** Ends the session on the hub (the cookie says which) and clears the cookie. */
  async logout(): Promise<void> {
    await this.anonymousApi.POST('/api/auth/logout');
  }

  me(): Promise<CurrentUserView> {
    return this.answer<CurrentUserView>(this.api.GET('/api/auth/me'));
  }

  /** Changes one's own password; every session ends and a new one is answered. */
  changePassword(currentPassword: string, newPassword: string): Promise<SessionView> {
    return this.answer<SessionView>(this.api.POST('/api/auth/password', { body: { currentPassword, newPassword } }));
  }

  /** Whether the hub offers sign-in with an identity provider (OIDC), and the provider's name. */
  oidcSignInOptions(): Promise<OidcSignInOptionsView> {
    return this.answer<OidcSignInOptionsView>(this.anonymousApi.GET('/api/auth/oidc'));
  }

  /* ---------- people ---------- */

  users(): Promise<UserView[]> {
    return this.answer<UserView[]>(this.api.GET('/api/users'));
  }

  createUser(input: {
    username: string;
    password: string;
    role: UserRole;
    mustChangePassword?: boolean;
  }): Promise<UserView> {
    return this.answer<UserView>(this.api.POST('/api/users', { body: input }));
  }

  updateUser(id: string, change: { role?: UserRole; disabled?: boolean }): Promise<UserView> {
    return this.answer<UserView>(this.api.PATCH('/api/users/{id}', { params: { path: { id } }, body: change }));
  }

  /** Sets a temporary password: the person's sessions end and their next sign-in must change it. */
  resetPassword(id: string, password: string): Promise<UserView> {
    return this.answer<UserView>(
      this.api.POST('/api/users/{id}/password', { params: { path: { id } }, body: { password } }),
    );
  }

  /** Links the account to a person's identity (`sub`) at the hub's identity provider. */
  linkOidcIdentity(id: string, subject: string): Promise<UserView> {
    return this.answer<UserView>(this.api.PUT('/api/users/{id}/oidc', { params: { path: { id } }, body: { subject } }));
  }

  unlinkOidcIdentity(id: string): Promise<UserView> {
    return this.answer<UserView>(this.api.DELETE('/api/users/{id}/oidc', { params: { path: { id } } }));
  }

  revokeSessions(id: string): Promise<UserView> {
    return this.answer<UserView>(this.api.DELETE('/api/users/{id}/sessions', { params: { path: { id } } }));
  }

  /* ---------- silos ---------- */

  silos(): Promise<SiloView[]> {
    return this.answer<SiloView[]>(this.api.GET('/api/silos'));
  }

  silo(id: string): Promise<SiloDetailView> {
    return this.answer<SiloDetailView>(this.api.GET('/api/silos/{id}', { params: { path: { id } } }));
  }

  registerSilo(input: { name: string; contact: string }): Promise<EnrollmentIssuedView> {
    return this.answer<EnrollmentIssuedView>(this.api.POST('/api/silos', { body: input }));
  }

  reEnrollSilo(id: string): Promise<EnrollmentIssuedView> {
    return this.answer<EnrollmentIssuedView>(this.api.POST('/api/silos/{id}/enrollment', { params: { path: { id } } }));
  }

  suspendSilo(id: string, reason: string): Promise<SiloView> {
    return this.answer<SiloView>(
      this.api.POST('/api/silos/{id}/suspend', { params: { path: { id } }, body: { reason } }),
    );
  }

  resumeSilo(id: string): Promise<SiloView> {
    return this.answer<SiloView>(this.api.POST('/api/silos/{id}/resume', { params: { path: { id } } }));
  }

  revokeCertificate(id: string, serial: string, reason: string): Promise<CertificateView> {
    return this.answer<CertificateView>(
      this.api.POST('/api/silos/{id}/certificates/{serial}/revoke', {
        params: { path: { id, serial } },
        body: { reason },
      }),
    );
  }

  /** What every study has spent on one silo's data (the hub's ledger), with the basic-composition total. */
  siloPrivacy(id: string): Promise<SiloPrivacyView> {
    return this.answer<SiloPrivacyView>(this.api.GET('/api/silos/{id}/privacy', { params: { path: { id } } }));
  }

  /* ---------- studies ---------- */

  studies(): Promise<StudyView[]> {
    return this.answer<StudyView[]>(this.api.GET('/api/studies'));
  }

  study(id: string): Promise<StudyView> {
    return this.answer<StudyView>(this.api.GET('/api/studies/{id}', { params: { path: { id } } }));
  }

  rounds(id: string): Promise<RoundView[]> {
    return this.answer<RoundView[]>(this.api.GET('/api/studies/{id}/rounds', { params: { path: { id } } }));
  }

  createStudy(plan: unknown): Promise<StudyView> {
    // The wizard sends what its form holds; the hub checks it against the plan's schema and answers every problem.
    return this.answer<StudyView>(this.api.POST('/api/studies', { body: { plan: plan as StudyPlan } }));
  }

  updatePlan(id: string, plan: unknown): Promise<StudyView> {
    return this.answer<StudyView>(
      this.api.PUT('/api/studies/{id}/plan', { params: { path: { id } }, body: { plan: plan as StudyPlan } }),
    );
  }

  submitStudy(id: string): Promise<StudyView> {
    return this.answer<StudyView>(this.api.POST('/api/studies/{id}/submit', { params: { path: { id } } }));
  }

  startStudy(id: string): Promise<StudyView> {
    return this.answer<StudyView>(this.api.POST('/api/studies/{id}/start', { params: { path: { id } } }));
  }

  stopStudy(id: string, reason: string): Promise<StudyView> {
    return this.answer<StudyView>(
      this.api.POST('/api/studies/{id}/stop', { params: { path: { id } }, body: { reason } }),
    );
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
    return this.answer<AuditEventPageView>(this.api.GET('/api/audit/events', { params: { query: given(query) } }));
  }

  auditEventsCsv(query: AuditEventQuery): Promise<DownloadedFile> {
    const { limit: _limit, cursor: _cursor, order: _order, ...filters } = query;
    return this.download(`${HUB_API.auditEventsCsv}${queryString(filters)}`, 'tessera-audit-events.csv');
  }

  verifyAudit(): Promise<AuditVerificationView> {
    return this.answer<AuditVerificationView>(this.api.GET('/api/audit/verify'));
  }

  checkpoints(): Promise<Checkpoint[]> {
    return this.answer<Checkpoint[]>(this.api.GET('/api/audit/checkpoints'));
  }

  auditPublicKey(): Promise<HubPublicKeyView> {
    return this.answer<HubPublicKeyView>(this.api.GET('/api/audit/public-key'));
  }

  auditPublicKeys(): Promise<AuditSigningKeyView[]> {
    return this.answer<AuditSigningKeyView[]>(this.api.GET('/api/audit/public-keys'));
  }

  /** The hub's current audit key as hub-public.pem (for `tessera-verify --public-key`). */
  auditPublicKeyPem(): Promise<DownloadedFile> {
    return this.download(HUB_API.auditPublicKeyPem, 'hub-public.pem');
  }
}
