// The hub's error contract: every code it can answer in the `error` of its error body (HubErrorBody), and the one
// HTTP status each code travels with. Hub, agent and console share this module, so a client branches on the code,
// never on the status alone: one status carries several meanings (409 is a stale plan, a closed study, a closed
// round, a duplicate update…).

/**
 * Every code the hub answers with. Adding one without its status in HUB_ERROR_STATUS fails to compile, and so does
 * the console until it has words for it (apps/console/src/api/error-guidance.ts).
 */
export enum HubErrorCode {
  /** A request body or parameter breaks its schema; `details` lists every problem. */
  VALIDATION_FAILED = 'VALIDATION_FAILED',
  /** Sign-in refused: unknown user, wrong password or disabled account (never says which). */
  INVALID_CREDENTIALS = 'INVALID_CREDENTIALS',
  /** The route needs a session and the request has none, or an expired or revoked one. */
  UNAUTHENTICATED = 'UNAUTHENTICATED',
  /** The session's role may not do this. */
  FORBIDDEN = 'FORBIDDEN',
  NOT_FOUND = 'NOT_FOUND',
  /** The change collides with the current state (a generic conflict; the codes below name the common ones). */
  CONFLICT = 'CONFLICT',
  USERNAME_TAKEN = 'USERNAME_TAKEN',
  /** A route declares no access rule: the hub refuses it rather than guess (a bug of the hub). */
  ROUTE_ACCESS_UNDECLARED = 'ROUTE_ACCESS_UNDECLARED',
  /** The enrollment token is unknown, used or expired. */
  ENROLLMENT_TOKEN_INVALID = 'ENROLLMENT_TOKEN_INVALID',
  /** The certificate request is malformed, badly signed, asks for too much or names another silo. */
  CSR_REJECTED = 'CSR_REJECTED',
  /** The silo's client certificate is not (or no longer) accepted: revoked, superseded, expired, unknown. */
  SILO_IDENTITY_REFUSED = 'SILO_IDENTITY_REFUSED',
  /**
   * The hub's administrator suspended the silo: its certificate stays valid, every request is refused until it is
   * resumed. Agents keep asking (with backoff) and carry on by themselves once resumed; never "re-enroll".
   */
  SILO_SUSPENDED = 'SILO_SUSPENDED',
  /** A renewed certificate was issued and not used yet. */
  RENEWAL_PENDING = 'RENEWAL_PENDING',
  /** Too many renewals in a short time. */
  RENEWAL_RATE_LIMITED = 'RENEWAL_RATE_LIMITED',
  /** The study plan breaks its schema or cannot meet its privacy target; `details` lists every problem. */
  PLAN_INVALID = 'PLAN_INVALID',
  /** The study is not in a state that allows this (e.g. deciding on a completed study, editing a running one). */
  STUDY_STATE = 'STUDY_STATE',
  /** The decision names a plan hash that is not the study's current plan: the plan changed since it was read. */
  STALE_PLAN = 'STALE_PLAN',
  /** The silo is not invited to this study. */
  NOT_A_PARTICIPANT = 'NOT_A_PARTICIPANT',
  /** No round of that number is open (or its deadline passed): the release arrived too late. */
  ROUND_CLOSED = 'ROUND_CLOSED',
  /** The round number is not the open one, or is open for evaluation only. */
  WRONG_ROUND = 'WRONG_ROUND',
  /** The update was trained on another model than the round's. */
  WRONG_MODEL = 'WRONG_MODEL',
  /** The silo already sent this round's update or report. */
  DUPLICATE_UPDATE = 'DUPLICATE_UPDATE',
  /** The update's frame, header or payload is not what the protocol and the plan allow. */
  UPDATE_MALFORMED = 'UPDATE_MALFORMED',
  UPDATE_TOO_LARGE = 'UPDATE_TOO_LARGE',
  /** Too many failed sign-ins for one username: every attempt is refused until the back-off ends (Retry-After). */
  LOGIN_BACKOFF = 'LOGIN_BACKOFF',
  /** Try again: the database cannot be reached right now (Retry-After). */
  DATABASE_UNAVAILABLE = 'DATABASE_UNAVAILABLE',
  /** Try again: the blob store cannot be written (read-only, full, permissions) right now (Retry-After). */
  STORAGE_UNAVAILABLE = 'STORAGE_UNAVAILABLE',
  /** A stored blob no longer matches its SHA-256 name: the hub refuses to use or serve it. */
  BLOB_CORRUPTED = 'BLOB_CORRUPTED',

  // Answered by the HTTP layer itself (routing, parameter pipes, body parsing, rate limits, health checks), named
  // after their status; NOT_FOUND, FORBIDDEN and CONFLICT above double as theirs.
  BAD_REQUEST = 'BAD_REQUEST',
  UNAUTHORIZED = 'UNAUTHORIZED',
  PAYLOAD_TOO_LARGE = 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE = 'UNSUPPORTED_MEDIA_TYPE',
  TOO_MANY_REQUESTS = 'TOO_MANY_REQUESTS',
  /** The hub failed; the body says nothing more than the correlation id to quote (the hub's log has the rest). */
  INTERNAL_SERVER_ERROR = 'INTERNAL_SERVER_ERROR',
  /** Not ready (a failed health check); `details` names the checks that are down. */
  SERVICE_UNAVAILABLE = 'SERVICE_UNAVAILABLE',
}

/** The HTTP status each code is answered with (RFC 9110 §15). */
export const HUB_ERROR_STATUS: Readonly<Record<HubErrorCode, number>> = {
  [HubErrorCode.VALIDATION_FAILED]: 400,
  [HubErrorCode.CSR_REJECTED]: 400,
  [HubErrorCode.PLAN_INVALID]: 400,
  [HubErrorCode.UPDATE_MALFORMED]: 400,
  [HubErrorCode.BAD_REQUEST]: 400,
  [HubErrorCode.INVALID_CREDENTIALS]: 401,
  [HubErrorCode.UNAUTHENTICATED]: 401,
  [HubErrorCode.ENROLLMENT_TOKEN_INVALID]: 401,
  [HubErrorCode.SILO_IDENTITY_REFUSED]: 401,
  [HubErrorCode.UNAUTHORIZED]: 401,
  [HubErrorCode.FORBIDDEN]: 403,
  [HubErrorCode.SILO_SUSPENDED]: 403,
  [HubErrorCode.NOT_A_PARTICIPANT]: 403,
  [HubErrorCode.NOT_FOUND]: 404,
  [HubErrorCode.CONFLICT]: 409,
  [HubErrorCode.USERNAME_TAKEN]: 409,
  [HubErrorCode.STUDY_STATE]: 409,
  [HubErrorCode.STALE_PLAN]: 409,
  [HubErrorCode.ROUND_CLOSED]: 409,
  [HubErrorCode.WRONG_ROUND]: 409,
  [HubErrorCode.WRONG_MODEL]: 409,
  [HubErrorCode.DUPLICATE_UPDATE]: 409,
  [HubErrorCode.RENEWAL_PENDING]: 409,
  [HubErrorCode.UPDATE_TOO_LARGE]: 413,
  [HubErrorCode.PAYLOAD_TOO_LARGE]: 413,
  [HubErrorCode.UNSUPPORTED_MEDIA_TYPE]: 415,
  [HubErrorCode.RENEWAL_RATE_LIMITED]: 429,
  [HubErrorCode.LOGIN_BACKOFF]: 429,
  [HubErrorCode.TOO_MANY_REQUESTS]: 429,
  [HubErrorCode.ROUTE_ACCESS_UNDECLARED]: 500,
  [HubErrorCode.BLOB_CORRUPTED]: 500,
  [HubErrorCode.INTERNAL_SERVER_ERROR]: 500,
  [HubErrorCode.DATABASE_UNAVAILABLE]: 503,
  [HubErrorCode.STORAGE_UNAVAILABLE]: 503,
  [HubErrorCode.SERVICE_UNAVAILABLE]: 503,
};

const CODES: ReadonlySet<string> = new Set(Object.values(HubErrorCode));

/** The code the HTTP layer answers for each status it raises (what the hub's error filter names them). */
const STATUS_CODES: ReadonlyMap<number, HubErrorCode> = new Map([
  [400, HubErrorCode.BAD_REQUEST],
  [401, HubErrorCode.UNAUTHORIZED],
  [403, HubErrorCode.FORBIDDEN],
  [404, HubErrorCode.NOT_FOUND],
  [409, HubErrorCode.CONFLICT],
  [413, HubErrorCode.PAYLOAD_TOO_LARGE],
  [415, HubErrorCode.UNSUPPORTED_MEDIA_TYPE],
  [429, HubErrorCode.TOO_MANY_REQUESTS],
  [500, HubErrorCode.INTERNAL_SERVER_ERROR],
  [503, HubErrorCode.SERVICE_UNAVAILABLE],
]);

export function isHubErrorCode(value: unknown): value is HubErrorCode {
  return typeof value === 'string' && CODES.has(value);
}

/** The HTTP status a code is answered with. */
export function hubErrorStatus(code: HubErrorCode): number {
  return HUB_ERROR_STATUS[code];
}

/**
 * The code for an error the HTTP layer raised with `status` (a framework exception, the body parser): the code named
 * after that status, or for a status outside the table (none of the hub's routes or middleware raise one) the code
 * of its class, 400 BAD_REQUEST or 500 INTERNAL_SERVER_ERROR, whose status the hub then answers with.
 */
export function hubErrorCodeForStatus(status: number): HubErrorCode {
  const named = STATUS_CODES.get(status);
  if (named !== undefined) return named;
  return status >= 400 && status < 500 ? HubErrorCode.BAD_REQUEST : HubErrorCode.INTERNAL_SERVER_ERROR;
}

/**
 * The contract's code in a hub answer's body (`{ error, message, correlationId }`), or undefined when the body is
 * not the hub's (a proxy's page) or names a code this client does not know (a newer hub): callers then fall back to
 * what the status says.
 */
export function hubErrorCodeOf(body: unknown): HubErrorCode | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const code = (body as { error?: unknown }).error;
  return isHubErrorCode(code) ? code : undefined;
}
