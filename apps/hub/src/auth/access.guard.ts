import type { TLSSocket } from 'node:tls';
import { Injectable, Optional, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard } from '@nestjs/passport';
import type { Request } from 'express';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { classifiedError } from '../common/transient-error.util';
import { RefusalRecorder } from '../silos/refusal-recorder.service';
import { attachSilo } from '../silos/silo-identity';
import { SiloCertificatesService } from '../silos/silo-certificates.service';
import { ACCESS_METADATA, PENDING_PASSWORD_CHANGE_METADATA, type AccessLevel } from '../access/access.decorator';
import type { AuthenticatedUser } from '../sessions/authenticated-user';
import { listenerOf, type Listener } from './listener';

const JwtGuard = AuthGuard('jwt');

/** Which listener serves each access level; anything else is refused there. */
function listenerFor(levels: AccessLevel[]): Listener {
  if (levels.includes('silo')) return 'silo';
  if (levels.includes('enrollment')) return 'enroll';
  return 'people';
}

/** The peer certificate's SHA-256 fingerprint as lowercase hex, when the TLS layer verified it. */
export function verifiedPeerFingerprint(req: Request): string | undefined {
  const socket = req.socket as TLSSocket;
  if (!socket.encrypted || !socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.fingerprint256) return undefined;
  return cert.fingerprint256.replace(/:/g, '').toLowerCase();
}

/**
 * The one guard in front of every route. It fails closed: a route that declares no access is refused.
 * Each route answers on one listener only: people's routes on the console/API listener, silo routes on the
 * mutual-TLS listener (where the certificate, never a URL or body, says which silo calls), enrollment on the
 * enrollment listener.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  private readonly jwt = new JwtGuard();

  constructor(
    private readonly reflector: Reflector,
    @Optional() private readonly silos?: SiloCertificatesService,
    @Optional() private readonly refusals?: RefusalRecorder,
  ) {}

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
    const expected = listenerFor(levels);
    if (listener !== expected) {
      throw new HubException(HubErrorCode.FORBIDDEN, `This route is not served on the ${listener} listener.`);
    }
    if (expected === 'silo') return this.admitSilo(req);
    if (expected === 'enroll' || levels.includes('public')) return true;

    if (!req.headers.authorization) {
      throw new HubException(HubErrorCode.UNAUTHENTICATED, 'Sign in first: this route needs a session token.');
    }
    try {
      await this.jwt.canActivate(context);
    } catch (err) {
      // A database outage while the account is re-read is "try again" (503), not "sign in again": the console
      // would otherwise drop a valid session.
      if (err instanceof HubException || classifiedError(err)) throw err;
      throw new HubException(HubErrorCode.UNAUTHENTICATED, 'The session token is missing, invalid or expired.');
    }
    const user = req.user;
    if (!user || !levels.includes(user.role)) {
      throw new HubException(HubErrorCode.FORBIDDEN, `This route needs the role ${levels.join(' or ')}.`);
    }
    if (user.mustChangePassword && !this.allowsPendingPasswordChange(context)) {
      throw new HubException(
        HubErrorCode.FORBIDDEN,
        'Change the temporary password first (POST /api/auth/password); until then this session may do nothing else.',
      );
    }
    return true;
  }

  private allowsPendingPasswordChange(context: ExecutionContext): boolean {
    return (
      this.reflector.getAllAndOverride<boolean | undefined>(PENDING_PASSWORD_CHANGE_METADATA, [
        context.getHandler(),
        context.getClass(),
      ]) === true
    );
  }

  private async admitSilo(req: Request): Promise<boolean> {
    const fingerprint = verifiedPeerFingerprint(req);
    if (!fingerprint || !this.silos) {
      throw new HubException(HubErrorCode.SILO_IDENTITY_REFUSED, 'A verified client certificate is required.');
    }
    try {
      // The request counts as the agent's open connection until its answer is sent or the connection drops.
      const contact = {
        headers: req.headers,
        url: req.originalUrl,
        onEnd: (done: () => void) => req.res?.once('close', done),
      };
      attachSilo(req, await this.silos.identify(fingerprint, new Date(), contact));
      return true;
    } catch (err) {
      if (err instanceof HubException) {
        // Aggregated per certificate and reason, so a refused silo that keeps calling cannot flood the audit chain.
        await this.refusals?.record({
          actor: { type: 'system', id: 'silo-listener' },
          action: 'silo.identity.refused',
          fingerprintSha256: fingerprint,
          reason: err.message,
          remoteAddress: req.socket.remoteAddress,
        });
      }
      throw err;
    }
  }
}
