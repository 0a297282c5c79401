import { BlobNotFoundError, BlobStorageUnavailableError } from './blob-store.exception';

/**
 * Socket and timeout failures of the hub's connection to the object store: the store is down, unreachable or slow.
 * The client's request is not at fault and succeeds once an operator (or the store) recovers.
 */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
]);

/**
 * S3 error codes that are the store's or the operator's to fix, never the client's: credentials refused or expired,
 * permissions taken away, the bucket gone (AWS S3 API reference, "List of error codes"). 5xx answers (InternalError,
 * ServiceUnavailable, SlowDown) are recognised by their status.
 */
const OPERATOR_CODES = new Set([
  'AccessDenied',
  'AllAccessDisabled',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'AccountProblem',
  'NoSuchBucket',
  'PermanentRedirect',
  'AuthorizationHeaderMalformed',
  'KMS.DisabledException',
  'KMS.KMSInvalidStateException',
  'CredentialsProviderError',
  'TimeoutError',
  'AbortError',
  'RequestTimeout',
]);

interface SdkErrorLike {
  name?: unknown;
  code?: unknown;
  Code?: unknown;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

/** The S3 error code (or socket code) of an AWS SDK error, looking through a short chain of causes. */
export function s3ErrorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && typeof e === 'object' && e !== null; depth += 1) {
    const like = e as SdkErrorLike;
    for (const c of [like.code, like.Code]) if (typeof c === 'string' && NETWORK_CODES.has(c)) return c;
    if (typeof like.Code === 'string') return like.Code;
    if (typeof like.name === 'string' && like.name !== 'Error' && like.$metadata) return like.name;
    if (typeof like.name === 'string' && OPERATOR_CODES.has(like.name)) return like.name;
    e = like.cause;
  }
  return undefined;
}

function httpStatusOf(err: unknown): number | undefined {
  return (err as SdkErrorLike | undefined)?.$metadata?.httpStatusCode;
}

/** Whether the object store said "no such object" (GetObject answers NoSuchKey, HeadObject a bare 404 NotFound). */
export function isMissingObject(err: unknown): boolean {
  const code = s3ErrorCode(err);
  return code === 'NoSuchKey' || code === 'NotFound' || (httpStatusOf(err) === 404 && code !== 'NoSuchBucket');
}

/**
 * Maps an AWS SDK failure the way asStorageError maps a file-system one: BlobStorageUnavailableError when the
 * store cannot serve (so the hub answers 503 "try again"), BlobNotFoundError for a missing object when `hash` names
 * one, and any other error as it is (a real 500: a request the hub built wrongly).
 */
export function asS3StorageError(operation: string, err: unknown, hash?: string): Error {
  if (err instanceof BlobStorageUnavailableError || err instanceof BlobNotFoundError) return err;
  if (hash !== undefined && isMissingObject(err)) return new BlobNotFoundError(hash, { cause: err });
  const code = s3ErrorCode(err);
  const status = httpStatusOf(err);
  if (code && (NETWORK_CODES.has(code) || OPERATOR_CODES.has(code))) {
    return new BlobStorageUnavailableError(operation, code, { cause: err });
  }
  if (status !== undefined && status >= 500) {
    return new BlobStorageUnavailableError(operation, code ?? `HTTP ${status}`, { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** Runs an object-store operation, re-throwing its failure through asS3StorageError. */
export async function s3Step<T>(operation: string, run: () => Promise<T>, hash?: string): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw asS3StorageError(operation, err, hash);
  }
}
