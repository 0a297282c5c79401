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

export const PENDING_PASSWORD_CHANGE_METADATA = 'tessera:allows-pending-password-change';

/**
 * Marks a people route a session may use while its account must change its password (a temporary password set by
 * an administrator): who am I, and the change itself. Every other route answers 403 until the password is changed.
 */
export const AllowsPendingPasswordChange = () => SetMetadata(PENDING_PASSWORD_CHANGE_METADATA, true);
