import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PkiErrorCode } from './pki.exception';
import { refusalCode } from './pki-fixtures.test-util';
import { isSiloId, siloIdFromUri, siloUri } from './silo-identity';

describe('silo identity', () => {
  it('maps a silo id to its URN and back (property)', () => {
    fc.assert(
      fc.property(fc.uuid(), (siloId) => {
        expect(isSiloId(siloId)).toBe(true);
        expect(siloUri(siloId)).toBe(`urn:tessera:silo:${siloId}`);
        expect(siloIdFromUri(siloUri(siloId))).toBe(siloId);
      }),
      { numRuns: 100 },
    );
  });

  it('accepts one spelling only', () => {
    const id = '0f8fad5b-d9cb-469f-a165-70867728950e';
    for (const other of [id.toUpperCase(), `{${id}}`, id.replaceAll('-', ''), ` ${id}`, `${id}\n`]) {
      expect(isSiloId(other)).toBe(false);
      expect(siloIdFromUri(`urn:tessera:silo:${other}`)).toBeNull();
    }
    expect(siloIdFromUri(`urn:tessera:site:${id}`)).toBeNull();
    expect(refusalCode(() => siloUri('hospital'))).toBe(PkiErrorCode.SiloIdInvalid);
  });
});
