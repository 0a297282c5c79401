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
      return HttpStatus.BAD_REQUEST;
    case HubErrorCode.INVALID_CREDENTIALS:
    case HubErrorCode.UNAUTHENTICATED:
    case HubErrorCode.ENROLLMENT_TOKEN_INVALID:
    case HubErrorCode.SILO_IDENTITY_REFUSED:
      return HttpStatus.UNAUTHORIZED;
    case HubErrorCode.FORBIDDEN:
    case HubErrorCode.SILO_SUSPENDED:
      return HttpStatus.FORBIDDEN;
    case HubErrorCode.NOT_FOUND:
      return HttpStatus.NOT_FOUND;
    case HubErrorCode.CONFLICT:
    case HubErrorCode.USERNAME_TAKEN:
      return HttpStatus.CONFLICT;
    case HubErrorCode.ROUTE_ACCESS_UNDECLARED:
      return HttpStatus.INTERNAL_SERVER_ERROR;
    default: {
      const unmapped: never = code;
      throw new Error(`unmapped hub error code ${String(unmapped)}`);
    }
  }
}
