import { QueryFailedError } from 'typeorm';
import { describe, expect, it } from 'vitest';
import { BlobIntegrityError, BlobStorageUnavailableError } from '../blobs/blob-store.exception';
import { errorBodyFor } from './global-exception.filter';
import { HubErrorCode } from './hub.exception';
import { classifiedError } from './transient-error.util';

function pgError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

function netError(code: string, syscall: string): Error {
  return Object.assign(new Error(`${syscall} ${code} 127.0.0.1:5432`), { code, syscall, errno: -111 });
}

describe('classifiedError', () => {
  it('answers a lost database with 503 DATABASE_UNAVAILABLE and a Retry-After', () => {
    const cases: Error[] = [
      netError('ECONNREFUSED', 'connect'),
      new Error('Connection terminated unexpectedly'),
      new QueryFailedError('SELECT 1', [], pgError('57P01', 'terminating connection due to administrator command')),
      pgError('08006', 'connection failure'),
      new Error('timeout exceeded when trying to connect'),
      Object.assign(new Error('connect ENOENT /data/db-socket/.s.PGSQL.5432'), { code: 'ENOENT', syscall: 'connect' }),
    ];
    for (const err of cases) {
      const answer = errorBodyFor(err, 'cid');
      expect(answer, err.message).toMatchObject({ status: 503, retryAfterSeconds: 5 });
      expect(answer.body.error).toBe(HubErrorCode.DATABASE_UNAVAILABLE);
      expect(JSON.stringify(answer.body)).not.toContain('5432');
    }
  });

  it('answers an unwritable blob store with 503 STORAGE_UNAVAILABLE', () => {
    const err = new BlobStorageUnavailableError('create a staged blob', 'EROFS', { cause: new Error('EROFS') });
    expect(errorBodyFor(err, 'c')).toMatchObject({
      status: 503,
      retryAfterSeconds: 30,
      body: { error: 'STORAGE_UNAVAILABLE' },
    });
  });

  it('answers a corrupted blob with 500 BLOB_CORRUPTED naming it', () => {
    const hash = 'ab'.repeat(32);
    const answer = errorBodyFor(new BlobIntegrityError(hash, 'cd'.repeat(32)), 'c');
    expect(answer.status).toBe(500);
    expect(answer.body.error).toBe('BLOB_CORRUPTED');
    expect(answer.body.message).toContain(hash);
  });

  it('answers a value the database refused as out of range with 400', () => {
    const err = new QueryFailedError('SELECT $1', [], pgError('22003', 'value "1e20" is out of range for type bigint'));
    expect(errorBodyFor(err, 'c')).toMatchObject({ status: 400, body: { error: 'VALIDATION_FAILED' } });
  });

  it('leaves real failures as they are: a client that hung up, a SQL bug', () => {
    // Node's error when a client aborts its request body: no syscall, so not the database's socket.
    expect(classifiedError(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }))).toBeNull();
    expect(classifiedError(new QueryFailedError('SELEC', [], pgError('42601', 'syntax error')))).toBeNull();
    expect(errorBodyFor(new Error('boom'), 'c').status).toBe(500);
  });
});
