import type { UserRole } from '@tessera/protocol';

/** An account whose password was just checked (sign-in, password change); no session yet. */
export interface VerifiedAccount {
  readonly id: string;
  readonly username: string;
  readonly role: UserRole;
  readonly mustChangePassword: boolean;
}

/** The person behind a request, as the session token and the database say. */
export interface AuthenticatedUser extends VerifiedAccount {
  /** The session (one sign-in, the family of its refresh tokens) the access token belongs to. */
  readonly sessionId: string;
}

/** Claims inside an access token. */
export interface SessionClaims {
  sub: string;
  /** The session id: checked against revocation on every request. */
  sid: string;
  username: string;
  role: UserRole;
}
