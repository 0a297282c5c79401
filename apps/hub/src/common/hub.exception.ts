import { HubErrorCode, hubErrorStatus } from '@tessera/protocol';

// The codes and their statuses are the wire contract (@tessera/protocol hub-errors.ts), shared with the agent and the
// console; the hub's services keep importing them from here.
export { HubErrorCode };

/** What a 500 says: nothing of the failure itself (the log has it), only what to quote. */
export const INTERNAL_ERROR_MESSAGE =
  'The hub could not complete the request. Quote the correlation id to the operator.';

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

/** The HTTP status of a code, as the contract fixes it (one table: HUB_ERROR_STATUS). */
export function httpStatusOf(code: HubErrorCode): number {
  return hubErrorStatus(code);
}
