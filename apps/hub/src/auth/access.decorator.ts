import { SetMetadata } from '@nestjs/common';

/**
 * Who may call a route. Every route declares exactly one `@Access(...)` (on the handler or its controller);
 * the global AccessGuard refuses any route that declares none, and a test enumerates them all.
 * - `public`: anyone (login, health, metrics).
 * - `admin`, `auditor`: a signed-in person with that role (list both to admit either).
 * - `silo`: an enrolled agent, identified by its client certificate on the mutual-TLS listener only.
 * - `enrollment`: an agent without a certificate yet, on the enrollment listener only (token checked by the route).
 */
export type AccessLevel = 'public' | 'admin' | 'auditor' | 'silo' | 'enrollment';
export const ACCESS_METADATA = 'tessera:access';

export const Access = (first: AccessLevel, ...more: AccessLevel[]) => SetMetadata(ACCESS_METADATA, [first, ...more]);
