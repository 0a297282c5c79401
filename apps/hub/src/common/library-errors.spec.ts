import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PkiErrorCode, PkiException } from '@tessera/pki';
import { HUB_ERROR_STATUS, HubErrorCode, UpdateFrameError } from '@tessera/protocol';
import { SecAggErrorCode, SecAggException } from '@tessera/secagg';
import { beforeAll, describe, expect, it } from 'vitest';
import { errorBodyFor } from './global-exception.filter';
import { INTERNAL_ERROR_MESSAGE } from './hub.exception';
import { LIBRARY_ERROR_ANSWERS, type ErrorClass } from './library-errors';

const LIBS = resolve(__dirname, '../../../../libs');

/** Every library of the workspace by package name, read from libs/*: a new library is enumerated too. */
function libraryNames(): string[] {
  return readdirSync(LIBS)
    .filter((dir) => {
      try {
        return readFileSync(join(LIBS, dir, 'package.json'), 'utf8').length > 0;
      } catch {
        return false; // not a library folder
      }
    })
    .map((dir) => (JSON.parse(readFileSync(join(LIBS, dir, 'package.json'), 'utf8')) as { name: string }).name);
}

function isErrorClass(value: unknown): value is ErrorClass {
  return typeof value === 'function' && (value as { prototype?: unknown }).prototype instanceof Error;
}

/** An instance of an error class without calling its constructor (whatever arguments it takes). */
function instanceOf(cls: ErrorClass, message: string): Error {
  const error = Object.create(cls.prototype as object) as Error;
  Object.defineProperty(error, 'message', { value: message });
  return error;
}

describe('library errors: one HTTP answer per class', () => {
  /** Each library's exported error classes, in the order the libraries are listed. */
  const exported = new Map<string, Set<ErrorClass>>();

  beforeAll(async () => {
    for (const name of libraryNames()) {
      const module = (await import(name)) as Record<string, unknown>;
      exported.set(name, new Set(Object.values(module).filter(isErrorClass)));
    }
  }, 60_000);

  it('finds the libraries and their error classes', () => {
    expect([...exported.keys()]).toEqual(expect.arrayContaining(['@tessera/protocol', '@tessera/dp', '@tessera/pki']));
    expect(exported.get('@tessera/protocol')).toContain(UpdateFrameError);
  });

  it('maps every error class a library exports exactly once', () => {
    const classes = new Set([...exported.values()].flatMap((set) => [...set]));
    const unmapped: string[] = [];
    for (const cls of classes) {
      const entries = LIBRARY_ERROR_ANSWERS.filter((entry) => entry.error === cls);
      if (entries.length !== 1) unmapped.push(`${cls.name}: ${entries.length} answers`);
    }
    expect(unmapped, 'add each class to LIBRARY_ERROR_ANSWERS (apps/hub/src/common/library-errors.ts)').toEqual([]);
  });

  it('maps only classes the named library exports', () => {
    for (const entry of LIBRARY_ERROR_ANSWERS) {
      expect(exported.get(entry.library), `${entry.error.name} of ${entry.library}`).toContain(entry.error);
    }
  });

  it.each(LIBRARY_ERROR_ANSWERS.map((entry) => [entry.error.name, entry] as const))(
    'answers %s with a code of the contract and its status, hiding the message of a 500',
    (_name, entry) => {
      const { status, body } = errorBodyFor(instanceOf(entry.error, 'what the library said'), 'cid');
      expect(Object.values(HubErrorCode)).toContain(body.error);
      expect(status).toBe(HUB_ERROR_STATUS[body.error]);
      expect(body.correlationId).toBe('cid');
      expect(body.message).toBe(status === 500 ? INTERNAL_ERROR_MESSAGE : 'what the library said');
    },
  );

  it("answers a silo's malformed update frame with 400 UPDATE_MALFORMED, also when it is the cause", () => {
    const frame = new UpdateFrameError('the update does not start with "TSU1"');
    expect(errorBodyFor(frame, 'c')).toMatchObject({ status: 400, body: { error: 'UPDATE_MALFORMED' } });
    const wrapped = new Error('reading the upload failed', { cause: frame });
    expect(errorBodyFor(wrapped, 'c')).toMatchObject({ status: 400, body: { message: frame.message } });
  });

  it("tells a silo's bad certificate request from the hub's own CA failing", () => {
    const csr = new PkiException(PkiErrorCode.CsrSignatureInvalid, 'the CSR signature does not verify');
    expect(errorBodyFor(csr, 'c')).toMatchObject({ status: 400, body: { error: 'CSR_REJECTED' } });
    const ca = new PkiException(PkiErrorCode.CaInvalid, 'the CA key does not match the CA certificate');
    expect(errorBodyFor(ca, 'c')).toMatchObject({ status: 500, body: { message: INTERNAL_ERROR_MESSAGE } });
  });

  it("tells a silo's malformed secure-aggregation message from the round's own state failing", () => {
    const message = new SecAggException(SecAggErrorCode.MalformedMessage, 'the share list is truncated');
    expect(errorBodyFor(message, 'c')).toMatchObject({ status: 400, body: { error: 'UPDATE_MALFORMED' } });
    const state = new SecAggException(SecAggErrorCode.TooFewSurvivors, 'fewer than t survivors');
    expect(errorBodyFor(state, 'c')).toMatchObject({ status: 500, body: { error: 'INTERNAL_SERVER_ERROR' } });
  });

  it('still answers an error no library owns with a 500 that says nothing of it', () => {
    const { status, body } = errorBodyFor(new TypeError('x is undefined at line 3'), 'c');
    expect(status).toBe(500);
    expect(body).toEqual({ error: 'INTERNAL_SERVER_ERROR', message: INTERNAL_ERROR_MESSAGE, correlationId: 'c' });
  });
});
