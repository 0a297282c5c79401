import { HttpStatus } from '@nestjs/common';

/** Every domain error the hub answers with. Adding a code without mapping it below fails to compile. */
export enum HubErrorCode {
  VALIDATION_FAILED = 'VALIDATION_FAILED',
  INVALID_CREDENTIALS = 'INVALID_CREDENTIALS',
  UNAUTHENTICATED = 'UNAUTHENTICATED',
  FORBIDDEN = 'FORBIDDEN',
  NOT_FOUND = 'NOT_FOUND',
  CONFLICT = 'CONFLICT',
  USERNAME_TAKEN = 'USERNAME_TAKEN',
  ROUTE_ACCESS_UNDECLARED = 'ROUTE_ACCESS_UNDECLARED',
  ENROLLMENT_TOKEN_INVALID = 'ENROLLMENT_TOKEN_INVALID',
  CSR_REJECTED = 'CSR_REJECTED',
  SILO_IDENTITY_REFUSED = 'SILO_IDENTITY_REFUSED',
  SILO_SUSPENDED = 'SILO_SUSPENDED',
  RENEWAL_PENDING = 'RENEWAL_PENDING',
  RENEWAL_RATE_LIMITED = 'RENEWAL_RATE_LIMITED',
  PLAN_INVALID = 'PLAN_INVALID',
  STUDY_STATE = 'STUDY_STATE',
  STALE_PLAN = 'STALE_PLAN',
  NOT_A_PARTICIPANT = 'NOT_A_PARTICIPANT',
  ROUND_CLOSED = 'ROUND_CLOSED',
  WRONG_ROUND = 'WRONG_ROUND',
  WRONG_MODEL = 'WRONG_MODEL',
  DUPLICATE_UPDATE = 'DUPLICATE_UPDATE',
  UPDATE_MALFORMED = 'UPDATE_MALFORMED',
  UPDATE_TOO_LARGE = 'UPDATE_TOO_LARGE',
  /** Too many failed sign-ins for one username: every attempt is refused until the back-off ends (429). */
  LOGIN_BACKOFF = 'LOGIN_BACKOFF',
  /** Try again: the database cannot be reached right now (503 with Retry-After). */
  DATABASE_UNAVAILABLE = 'DATABASE_UNAVAILABLE',
  /** Try again: the blob store cannot be written (read-only, full, permissions) right now (503 with Retry-After). */
  STORAGE_UNAVAILABLE = 'STORAGE_UNAVAILABLE',
  /** A stored blob no longer matches its SHA-256 name: the hub refuses to use or serve it (500). */
  BLOB_CORRUPTED = 'BLOB_CORRUPTED',
}

export interface HubExceptionOptions {
  /** Seconds after which the caller may try again; sent as the Retry-After header. */
  retryAfterSeconds?: number;
  cause?: unknown;
}

export class HubException extends Error {
  readonly retryAfterSeconds?: number;

  constructor(
    readonly code: HubErrorCode,
    message: string,
    /** Extra, safe-to-show detail (for instance every validation problem). */
    readonly details?: unknown,
    options: HubExceptionOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HubException';
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export function httpStatusOf(code: HubErrorCode): HttpStatus {
  switch (code) {
    case HubErrorCode.VALIDATION_FAILED:
    case HubErrorCode.CSR_REJECTED:
    case HubErrorCode.PLAN_INVALID:
    case HubErrorCode.UPDATE_MALFORMED:
      return HttpStatus.BAD_REQUEST;
    case HubErrorCode.INVALID_CREDENTIALS:
    case HubErrorCode.UNAUTHENTICATED:
    case HubErrorCode.ENROLLMENT_TOKEN_INVALID:
    case HubErrorCode.SILO_IDENTITY_REFUSED:
      return HttpStatus.UNAUTHORIZED;
    case HubErrorCode.FORBIDDEN:
    case HubErrorCode.SILO_SUSPENDED:
    case HubErrorCode.NOT_A_PARTICIPANT:
      return HttpStatus.FORBIDDEN;
    case HubErrorCode.NOT_FOUND:
      return HttpStatus.NOT_FOUND;
    case HubErrorCode.CONFLICT:
    case HubErrorCode.USERNAME_TAKEN:
    case HubErrorCode.STUDY_STATE:
    case HubErrorCode.STALE_PLAN:
    case HubErrorCode.ROUND_CLOSED:
    case HubErrorCode.WRONG_ROUND:
    case HubErrorCode.WRONG_MODEL:
    case HubErrorCode.DUPLICATE_UPDATE:
    case HubErrorCode.RENEWAL_PENDING:
      return HttpStatus.CONFLICT;
    case HubErrorCode.RENEWAL_RATE_LIMITED:
    case HubErrorCode.LOGIN_BACKOFF:
      return HttpStatus.TOO_MANY_REQUESTS;
    case HubErrorCode.DATABASE_UNAVAILABLE:
    case HubErrorCode.STORAGE_UNAVAILABLE:
      return HttpStatus.SERVICE_UNAVAILABLE;
    case HubErrorCode.UPDATE_TOO_LARGE:
      return HttpStatus.PAYLOAD_TOO_LARGE;
    case HubErrorCode.ROUTE_ACCESS_UNDECLARED:
    case HubErrorCode.BLOB_CORRUPTED:
      return HttpStatus.INTERNAL_SERVER_ERROR;
    default: {
      const unmapped: never = code;
      throw new Error(`unmapped hub error code ${String(unmapped)}`);
    }
  }
}
