import { HubErrorCode, isHubErrorCode } from '@tessera/protocol';

/** Codes the console gives an ApiError itself, when there is no answer of the hub to read. */
export enum ConsoleErrorCode {
  /** The hub could not be reached at all. */
  NETWORK_ERROR = 'NETWORK_ERROR',
  /** A success status whose body was not the JSON the route promises (a proxy in the way, typically). */
  BAD_RESPONSE = 'BAD_RESPONSE',
}

/**
 * What a person should understand or do next, for every code the hub can answer (its `message` says what happened;
 * this says what to do about it). A Record over the contract's codes: a code added to @tessera/protocol fails to
 * compile here until the console has words for it.
 */
const HUB_GUIDANCE: Readonly<Record<HubErrorCode, string>> = {
  [HubErrorCode.VALIDATION_FAILED]: 'Correct the fields listed below and send again.',
  [HubErrorCode.INVALID_CREDENTIALS]: 'Check the username and the password.',
  [HubErrorCode.UNAUTHENTICATED]: 'Your session has ended. Sign in again.',
  [HubErrorCode.FORBIDDEN]: 'Your role cannot do this; an administrator can.',
  [HubErrorCode.NOT_FOUND]: 'It may have been removed, or the link is wrong.',
  [HubErrorCode.CONFLICT]: 'Something changed meanwhile. Reload the page and try again.',
  [HubErrorCode.USERNAME_TAKEN]: 'Choose another username.',
  [HubErrorCode.ROUTE_ACCESS_UNDECLARED]: 'This is a fault of the hub. Tell the operator, quoting the correlation id.',
  [HubErrorCode.ENROLLMENT_TOKEN_INVALID]: 'Issue a new enrollment bundle for this silo.',
  [HubErrorCode.CSR_REJECTED]: "The silo's certificate request was refused; its agent has to enroll again.",
  [HubErrorCode.SILO_IDENTITY_REFUSED]: "The silo's certificate is no longer accepted; enroll the silo again.",
  [HubErrorCode.SILO_SUSPENDED]: 'Resume the silo first.',
  [HubErrorCode.RENEWAL_PENDING]: "A renewed certificate is waiting for the silo's agent to pick it up.",
  [HubErrorCode.RENEWAL_RATE_LIMITED]: 'Too many certificate renewals: wait before trying again.',
  [HubErrorCode.PLAN_INVALID]: 'Correct the plan where the problems below point, and submit it again.',
  [HubErrorCode.STUDY_STATE]: "The study's state no longer allows this. Reload the study to see where it stands.",
  [HubErrorCode.STALE_PLAN]: 'The plan changed since it was read. Reload the study and review the current plan.',
  [HubErrorCode.NOT_A_PARTICIPANT]: 'This silo is not invited to the study.',
  [HubErrorCode.ROUND_CLOSED]: 'The round has closed.',
  [HubErrorCode.WRONG_ROUND]: 'That round is not the one open.',
  [HubErrorCode.WRONG_MODEL]: "The update was not trained on the round's model.",
  [HubErrorCode.DUPLICATE_UPDATE]: 'The silo already sent this round.',
  [HubErrorCode.UPDATE_MALFORMED]: "The silo's update was refused as malformed.",
  [HubErrorCode.UPDATE_TOO_LARGE]: "The silo's update is larger than the hub accepts.",
  [HubErrorCode.LOGIN_BACKOFF]: 'Too many failed sign-ins for this account: wait before trying again.',
  [HubErrorCode.DATABASE_UNAVAILABLE]: "The hub's database is unavailable right now. Try again in a moment.",
  [HubErrorCode.STORAGE_UNAVAILABLE]: 'The hub cannot store data right now. Try again later.',
  [HubErrorCode.BLOB_CORRUPTED]: 'A file stored on the hub is damaged. Tell the operator, quoting the correlation id.',
  [HubErrorCode.BAD_REQUEST]: 'The hub did not understand the request. Reload the page and try again.',
  [HubErrorCode.UNAUTHORIZED]: 'Sign in again.',
  [HubErrorCode.PAYLOAD_TOO_LARGE]: 'What you sent is larger than the hub accepts.',
  [HubErrorCode.UNSUPPORTED_MEDIA_TYPE]: 'The hub cannot read content of this kind.',
  [HubErrorCode.TOO_MANY_REQUESTS]: 'Too many attempts: wait a minute before trying again.',
  [HubErrorCode.INTERNAL_SERVER_ERROR]: 'This is a fault of the hub, not of what you entered.',
  [HubErrorCode.SERVICE_UNAVAILABLE]: 'The hub is not ready yet. Try again in a moment.',
};

const CONSOLE_GUIDANCE: Readonly<Record<ConsoleErrorCode, string>> = {
  [ConsoleErrorCode.NETWORK_ERROR]: 'Check the network connection, then try again.',
  [ConsoleErrorCode.BAD_RESPONSE]: 'The answer could not be read; a proxy may be in the way. Reload the page.',
};

const CONSOLE_CODES: ReadonlySet<string> = new Set(Object.values(ConsoleErrorCode));

function isConsoleErrorCode(code: string): code is ConsoleErrorCode {
  return CONSOLE_CODES.has(code);
}

/** What to do about an error with this code; null for a code neither the hub nor the console defines. */
export function guidanceFor(code: string): string | null {
  if (isHubErrorCode(code)) return HUB_GUIDANCE[code];
  if (isConsoleErrorCode(code)) return CONSOLE_GUIDANCE[code];
  return null;
}
