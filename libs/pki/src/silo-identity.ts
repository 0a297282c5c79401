import { PkiErrorCode, PkiException } from './pki.exception';

/** URI prefix of a silo identity in a certificate's subjectAltName (an RFC 8141 URN in Tessera's namespace). */
export const SILO_URI_PREFIX = 'urn:tessera:silo:';

// Lowercase canonical UUID (RFC 9562 section 4, textual form). Only one spelling is accepted so that a silo has
// exactly one identity string: 'ABC…' and 'abc…' must not become two silos.
const SILO_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True when `value` is a lowercase canonical UUID (RFC 9562 section 4), the only accepted silo id spelling. */
export function isSiloId(value: string): boolean {
  return SILO_ID_PATTERN.test(value);
}

/** Throws SILO_ID_INVALID unless `siloId` is a lowercase canonical UUID. */
export function assertSiloId(siloId: string): void {
  if (!isSiloId(siloId)) {
    throw new PkiException(
      PkiErrorCode.SiloIdInvalid,
      `Silo id ${JSON.stringify(siloId)} is not a lowercase canonical UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).`,
    );
  }
}

/** The SAN URI naming a silo: `urn:tessera:silo:<uuid>` (RFC 5280 section 4.2.1.6 uniformResourceIdentifier). */
export function siloUri(siloId: string): string {
  assertSiloId(siloId);
  return `${SILO_URI_PREFIX}${siloId}`;
}

/** The silo id inside a silo URI, or null when `uri` is not exactly `urn:tessera:silo:<lowercase uuid>`. */
export function siloIdFromUri(uri: string): string | null {
  if (!uri.startsWith(SILO_URI_PREFIX)) return null;
  const id = uri.slice(SILO_URI_PREFIX.length);
  return isSiloId(id) ? id : null;
}
