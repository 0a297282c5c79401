import type { Request } from 'express';
import type { AuditActor } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { AuthenticatedUser } from './authenticated-user';

export type AuthenticatedRequest = Request & { user?: AuthenticatedUser };

export function userOf(req: AuthenticatedRequest): AuthenticatedUser {
  if (!req.user) throw new HubException(HubErrorCode.UNAUTHENTICATED, 'Sign in first.');
  return req.user;
}

export function actorOf(req: AuthenticatedRequest): AuditActor {
  const user = userOf(req);
  return { type: 'user', id: user.id, name: user.username };
}
