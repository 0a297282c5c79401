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
}

export class HubException extends Error {
  constructor(
    readonly code: HubErrorCode,
    message: string,
    /** Extra, safe-to-show detail (for instance every validation problem). */
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'HubException';
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
      return HttpStatus.TOO_MANY_REQUESTS;
    case HubErrorCode.UPDATE_TOO_LARGE:
      return HttpStatus.PAYLOAD_TOO_LARGE;
    case HubErrorCode.ROUTE_ACCESS_UNDECLARED:
      return HttpStatus.INTERNAL_SERVER_ERROR;
    default: {
      const unmapped: never = code;
      throw new Error(`unmapped hub error code ${String(unmapped)}`);
    }
  }
}
