import { BlobIntegrityError, BlobStorageUnavailableError } from '../blobs/blob-store.exception';
import { HubErrorCode, HubException } from './hub.exception';
import { libraryErrorAnswer } from './library-errors';

/** Retry-After for a database outage (s): connections come back within seconds of a restart or fail-over. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;
/** Retry-After when the blob store cannot be written (s): an operator has to act (free space, remount). */
export const STORAGE_RETRY_AFTER_SECONDS = 30;

/**
 * SQLSTATEs that mean "the database cannot serve right now": class 08 (connection exception), 57P01–57P03
 * (administrator or crash shutdown, cannot connect now), 53300 (too many connections), 40001 and 40P01
 * (serialization failure, deadlock: the same request succeeds when tried again). PostgreSQL appendix A.
 */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '40001', '40P01']);
/** Socket errors of the hub's own connections to the database (the hub makes no other outbound connection). */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
]);
const SOCKET_SYSCALLS = new Set(['connect', 'getaddrinfo', 'read', 'write']);
/** node-postgres reports a lost or unobtainable connection with these messages and no code. */
const DRIVER_MESSAGES =
  /Connection terminated|connection error and is not queryable|Client was closed and is not queryable|timeout exceeded when trying to connect|Cannot use a pool after calling end/i;
/**
 * SQLSTATEs of class 22 (data exception) that a value sent by a client causes when it reaches the database
 * unchecked: 22001 string too long, 22003 number out of range, 22P02 invalid text representation, 22021 byte
 * sequence not valid (NUL), 22P05 untranslatable character. The edge checks refuse these first; this is the last
 * line, so such a request still answers 400 and not 500.
 */
const INPUT_SQLSTATES = new Set(['22001', '22003', '22P02', '22021', '22P05']);

interface ErrorLike {
  code?: unknown;
  syscall?: unknown;
  message?: unknown;
  driverError?: unknown;
  cause?: unknown;
}

/** The error, the driver error TypeORM wraps, and their causes (a short chain: a cycle cannot loop). */
function chainOf(err: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  const queue: unknown[] = [err];
  while (queue.length > 0 && out.length < 8) {
    const e = queue.shift();
    if (typeof e !== 'object' || e === null || out.includes(e)) continue;
    const like = e as ErrorLike;
    out.push(like);
    queue.push(like.driverError, like.cause);
  }
  return out;
}

function isDatabaseUnavailable(e: ErrorLike): boolean {
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code && (code.startsWith('08') || UNAVAILABLE_SQLSTATES.has(code))) return true;
  if (code && SOCKET_CODES.has(code) && typeof e.syscall === 'string' && SOCKET_SYSCALLS.has(e.syscall)) return true;
  // The embedded database's Unix socket is gone (the hub's database stopped).
  if (code === 'ENOENT' && e.syscall === 'connect') return true;
  return typeof e.message === 'string' && code === undefined && DRIVER_MESSAGES.test(e.message);
}

/**
 * Maps the errors the hub knows to a coded HubException: "try again" (503 with Retry-After) when the database or the
 * blob store cannot serve right now, 500 BLOB_CORRUPTED for a blob that fails its check, 400 for a value the database
 * refused as out of range, and a library's error by its one answer (library-errors.ts; the message is hidden when
 * that answer is INTERNAL_SERVER_ERROR). Anything else is null: a real 500.
 */
export function classifiedError(err: unknown): HubException | null {
  if (err instanceof HubException) return err;
  const chain = chainOf(err);
  for (const e of chain) {
    if (e instanceof BlobIntegrityError) {
      return new HubException(
        HubErrorCode.BLOB_CORRUPTED,
        `Blob ${e.hash} is corrupted on the hub (its bytes no longer match its SHA-256 name); the hub refuses to ` +
          'serve or use it. The operator has been told and must restore it from a backup.',
        undefined,
        { cause: err },
      );
    }
    if (e instanceof BlobStorageUnavailableError) {
      return new HubException(
        HubErrorCode.STORAGE_UNAVAILABLE,
        `The hub cannot store data right now (${e.code}); nothing was stored. Try again later.`,
        undefined,
        { retryAfterSeconds: STORAGE_RETRY_AFTER_SECONDS, cause: err },
      );
    }
  }
  if (chain.some(isDatabaseUnavailable)) {
    return new HubException(
      HubErrorCode.DATABASE_UNAVAILABLE,
      'The hub cannot reach its database right now. Try again later.',
      undefined,
      { retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS, cause: err },
    );
  }
  const input = chain.find((e) => typeof e.code === 'string' && INPUT_SQLSTATES.has(e.code));
  if (input) {
    return new HubException(
      HubErrorCode.VALIDATION_FAILED,
      'A value in the request is outside what the hub can store (too long, out of range, or not valid text).',
      undefined,
      { cause: err },
    );
  }
  for (const e of chain) {
    const library = libraryErrorAnswer(e);
    if (library) return new HubException(library.code, library.message, undefined, { cause: err });
  }
  return null;
}
