import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard } from '@nestjs/passport';
import type { Request } from 'express';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { ACCESS_METADATA, type AccessLevel } from './access.decorator';
import type { AuthenticatedUser } from './authenticated-user';
import { listenerOf } from './listener';

const JwtGuard = AuthGuard('jwt');

/**
 * The one guard in front of every route. It fails closed: a route that declares no access is refused.
 * Silo routes answer only on the mutual-TLS listener; people's routes only on the console/API listener.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  private readonly jwt = new JwtGuard();

  constructor(private readonly reflector: Reflector) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const levels = this.reflector.getAllAndOverride<AccessLevel[] | undefined>(ACCESS_METADATA, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (!levels || levels.length === 0) {
      throw new HubException(HubErrorCode.ROUTE_ACCESS_UNDECLARED, 'This route declares no access rule.');
    }
    const req = context.switchToHttp().getRequest<Request & { user?: AuthenticatedUser }>();
    const listener = listenerOf(req);

    if (levels.includes('silo')) {
      if (listener !== 'silo') {
        throw new HubException(HubErrorCode.FORBIDDEN, 'Silo routes are served only on the mutual-TLS silo listener.');
      }
      return true; // The silo identity itself is checked by the SiloIdentityGuard on the silo routes.
    }
    if (listener === 'silo') {
      throw new HubException(HubErrorCode.FORBIDDEN, 'This route is not served on the silo listener.');
    }
    if (levels.includes('public')) return true;

    if (!req.headers.authorization) {
      throw new HubException(HubErrorCode.UNAUTHENTICATED, 'Sign in first: this route needs a session token.');
    }
    try {
      await this.jwt.canActivate(context);
    } catch (err) {
      if (err instanceof HubException) throw err;
      throw new HubException(HubErrorCode.UNAUTHENTICATED, 'The session token is missing, invalid or expired.');
    }
    const user = req.user;
    if (!user || !levels.includes(user.role)) {
      throw new HubException(HubErrorCode.FORBIDDEN, `This route needs the role ${levels.join(' or ')}.`);
    }
    return true;
  }
}
