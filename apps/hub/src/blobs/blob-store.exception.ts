/**
 * A stored blob whose bytes no longer hash to its name (bit rot, a bad disk, a hand edit). The hub refuses to use
 * or serve it: a corrupted update must not enter an aggregate, and a corrupted model must not reach an agent.
 */
export class BlobIntegrityError extends Error {
  constructor(
    /** The blob's name: the SHA-256 its bytes had when stored. */
    readonly hash: string,
    /** The SHA-256 of the bytes read now. */
    readonly actualHash: string,
  ) {
    super(`blob ${hash} is corrupted: its bytes now hash to ${actualHash}`);
    this.name = 'BlobIntegrityError';
  }
}

/**
 * Error codes of the file system that mean "the store cannot take bytes right now", not "the request is wrong":
 * a read-only mount (EROFS), a full disk or quota (ENOSPC, EDQUOT), permissions changed under the hub (EACCES,
 * EPERM), too many open files (EMFILE, ENFILE), an I/O error of the device (EIO). An operator can fix each; the
 * client should try again later rather than drop its upload.
 */
export const STORAGE_UNAVAILABLE_CODES: readonly string[] = [
  'EROFS',
  'ENOSPC',
  'EDQUOT',
  'EACCES',
  'EPERM',
  'EMFILE',
  'ENFILE',
  'EIO',
];

/**
 * The blob store cannot be written (or read) for a reason of its own medium: a file-system code of
 * STORAGE_UNAVAILABLE_CODES, or an object store that cannot be reached, refuses the hub's credentials or answers 5xx.
 */
export class BlobStorageUnavailableError extends Error {
  constructor(
    /** What the store was doing, e.g. "write a staged blob". */
    readonly operation: string,
    /** The medium's error code: a file-system code (EROFS), an S3 error code (AccessDenied) or a socket's (ECONNREFUSED). */
    readonly code: string,
    options: { cause: unknown },
  ) {
    super(`the blob store cannot ${operation} (${code})`, options);
    this.name = 'BlobStorageUnavailableError';
  }
}

/**
 * No blob has this name. A database row names a blob only once its bytes are committed, so for a named blob this is
 * data loss in the store (a deleted object, a restored backup older than the database), not a client's mistake.
 */
export class BlobNotFoundError extends Error {
  constructor(
    readonly hash: string,
    options?: { cause: unknown },
  ) {
    super(`blob ${hash} is not in the blob store`, options);
    this.name = 'BlobNotFoundError';
  }
}

/**
 * A ranged read outside the blob: not 0 ≤ start ≤ end, or past its last byte. For a named update this means the
 * stored blob is shorter than its header says (a truncated file), or the caller computed a wrong offset.
 */
export class BlobRangeError extends Error {
  constructor(
    readonly hash: string,
    readonly start: number,
    readonly end: number,
    /** The blob's size in bytes, when known. */
    readonly size?: number,
  ) {
    super(
      `bytes [${start}, ${end}) of blob ${hash} cannot be read` +
        (size === undefined ? ': not a range (0 ≤ start ≤ end, integers)' : `: the blob holds ${size} bytes`),
    );
    this.name = 'BlobRangeError';
  }
}

/** Re-throws a storage-medium failure as BlobStorageUnavailableError; any other error as it is. */
export function asStorageError(operation: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && STORAGE_UNAVAILABLE_CODES.includes(code)) {
    return new BlobStorageUnavailableError(operation, code, { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}
