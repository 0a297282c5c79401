import type { Request } from 'express';
import { HubErrorCode, HubException } from '../common/hub.exception';

/** The silo behind a request on the mutual-TLS listener, as its verified certificate and the database say. */
export interface SiloIdentity {
  readonly siloId: string;
  readonly name: string;
  readonly certificateSerial: string;
  /** SHA-256 of the certificate's DER, lowercase hex. */
  readonly certificateFingerprintSha256: string;
  readonly certificateNotAfter: Date;
}

const SILO = Symbol('tessera.silo');

export function attachSilo(req: Request, silo: SiloIdentity): void {
  (req as unknown as Record<symbol, SiloIdentity>)[SILO] = silo;
}

/** The calling silo. Never take a silo id from a URL or a body instead. */
export function siloOf(req: Request): SiloIdentity {
  const silo = (req as unknown as Record<symbol, SiloIdentity | undefined>)[SILO];
  if (!silo) throw new HubException(HubErrorCode.SILO_IDENTITY_REFUSED, 'No verified silo identity on this request.');
  return silo;
}
