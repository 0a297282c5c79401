import type { Role } from '../accounts/user.entity';

/** The person behind a request, as the session token and the database say. */
export interface AuthenticatedUser {
  readonly id: string;
  readonly username: string;
  readonly role: Role;
}

/** Claims inside a session token. */
export interface SessionClaims {
  sub: string;
  username: string;
  role: Role;
}
