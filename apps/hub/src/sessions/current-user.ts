import type { Request } from 'express';
import type { AuditActor } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { AuthenticatedUser, VerifiedAccount } from './authenticated-user';

export type AuthenticatedRequest = Request & { user?: AuthenticatedUser };

export function userOf(req: AuthenticatedRequest): AuthenticatedUser {
  if (!req.user) throw new HubException(HubErrorCode.UNAUTHENTICATED, 'Sign in first.');
  return req.user;
}

/** The account the login route's password check put on the request (before any session exists). */
export function verifiedAccountOf(req: Request): VerifiedAccount {
  // Passport types `req.user` as its own empty User; the local strategy put a VerifiedAccount there.
  const account = req.user as VerifiedAccount | undefined;
  if (!account) throw new HubException(HubErrorCode.UNAUTHENTICATED, 'Sign in first.');
  return account;
}

export function actorOf(req: AuthenticatedRequest): AuditActor {
  const user = userOf(req);
  return { type: 'user', id: user.id, name: user.username };
}
