import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCsr, parseCsr } from './csr';
import { generateKeyPair, KeyPairPem, publicKeySha256 } from './key-pair';
import { PkiErrorCode, PkiException } from './pki.exception';
import { buildRawCsr, csrDer, derToCsrPem, newSiloId, refusalCode, sanUris } from './pki-fixtures.test-util';

describe('createCsr / parseCsr', () => {
  let key: KeyPairPem;
  let otherKey: KeyPairPem;

  beforeAll(() => {
    key = generateKeyPair();
    otherKey = generateKeyPair();
  });

  it('round-trips the silo id, the public key and the requested SAN', () => {
    const siloId = newSiloId();
    const parsed = parseCsr(createCsr({ privateKeyPem: key.privateKeyPem, siloId }), { expectedSiloId: siloId });
    expect(parsed).toEqual({
      siloId,
      publicKeyPem: key.publicKeyPem,
      publicKeySha256: publicKeySha256(key.publicKeyPem),
      modulusBits: 2048,
      requestedExtensions: [{ oid: '2.5.29.17', name: 'subjectAltName', critical: false }],
      signatureValid: true,
    });
  });

  it('accepts a CSR without expectedSiloId and reports the id it names', () => {
    const siloId = newSiloId();
    expect(parseCsr(createCsr({ privateKeyPem: key.privateKeyPem, siloId })).siloId).toBe(siloId);
  });

  it('round-trips arbitrary silo ids (property)', () => {
    fc.assert(
      fc.property(fc.uuid(), (siloId) => {
        const parsed = parseCsr(createCsr({ privateKeyPem: key.privateKeyPem, siloId }), { expectedSiloId: siloId });
        expect(parsed.siloId).toBe(siloId);
      }),
      { numRuns: 15 },
    );
  });

  it('refuses to build a CSR for a silo id that is not a lowercase UUID', () => {
    for (const siloId of ['', 'hospital-a', newSiloId().toUpperCase(), `${newSiloId()} `]) {
      expect(refusalCode(() => createCsr({ privateKeyPem: key.privateKeyPem, siloId }))).toBe(
        PkiErrorCode.SiloIdInvalid,
      );
    }
  });

  it('refuses to build a CSR with a key that is not RSA or is too short', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    const short = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    expect(refusalCode(() => createCsr({ privateKeyPem: ec.toString(), siloId: newSiloId() }))).toBe(
      PkiErrorCode.KeyMalformed,
    );
    expect(refusalCode(() => createCsr({ privateKeyPem: short.toString(), siloId: newSiloId() }))).toBe(
      PkiErrorCode.KeyTooWeak,
    );
  });

  describe('refusals', () => {
    it('CSR_MALFORMED for garbage, other PEM types and truncated DER', () => {
      const valid = createCsr({ privateKeyPem: key.privateKeyPem, siloId: newSiloId() });
      const der = csrDer(valid);
      const cases = [
        '',
        'not a csr',
        key.publicKeyPem,
        valid.replace('CERTIFICATE REQUEST', 'CERTIFICATE'),
        `${valid}${valid}`,
        derToCsrPem(der.subarray(0, der.length - 1)),
        derToCsrPem(Buffer.concat([der, Buffer.from([0])])),
        derToCsrPem(Buffer.from('3000', 'hex')),
      ];
      for (const pem of cases) expect(refusalCode(() => parseCsr(pem))).toBe(PkiErrorCode.CsrMalformed);
    });

    it('CSR_SIGNATURE_INVALID when the signature bits are altered', () => {
      const der = Buffer.from(csrDer(createCsr({ privateKeyPem: key.privateKeyPem, siloId: newSiloId() })));
      der[der.length - 1]! ^= 0x01; // last octet of the signature BIT STRING
      const error = (() => {
        try {
          parseCsr(derToCsrPem(der));
        } catch (caught) {
          return caught;
        }
        return null;
      })();
      expect(error).toBeInstanceOf(PkiException);
      expect((error as PkiException).code).toBe(PkiErrorCode.CsrSignatureInvalid);
      expect((error as PkiException).message).toMatch(/signature does not verify/);
    });

    it('CSR_SIGNATURE_INVALID when the request is re-labelled with another silo id', () => {
      const siloA = newSiloId();
      const siloB = newSiloId();
      const der = Buffer.from(csrDer(createCsr({ privateKeyPem: key.privateKeyPem, siloId: siloA })));
      // Same length, so framing survives and only the signature can catch it.
      const swapped = Buffer.from(der.toString('latin1').split(siloA).join(siloB), 'latin1');
      expect(refusalCode(() => parseCsr(derToCsrPem(swapped)))).toBe(PkiErrorCode.CsrSignatureInvalid);
    });

    it('CSR_SIGNATURE_INVALID when the key is swapped for another (no proof of possession)', () => {
      const siloId = newSiloId();
      const mine = Buffer.from(csrDer(createCsr({ privateKeyPem: key.privateKeyPem, siloId })));
      const theirs = csrDer(createCsr({ privateKeyPem: otherKey.privateKeyPem, siloId }));
      // Both CSRs have identical layout (same lengths); splice the other key's SPKI into mine.
      const spkiOf = (der: Buffer): Buffer => der.subarray(der.indexOf(Buffer.from('30820122', 'hex')), undefined);
      const spkiStart = mine.indexOf(Buffer.from('30820122', 'hex'));
      spkiOf(theirs).subarray(0, 0x126).copy(mine, spkiStart);
      expect(refusalCode(() => parseCsr(derToCsrPem(mine)))).toBe(PkiErrorCode.CsrSignatureInvalid);
    });

    it('CSR_REQUESTS_CA when basicConstraints cA is requested', () => {
      const siloId = newSiloId();
      const csr = buildRawCsr({
        privateKeyPem: key.privateKeyPem,
        commonName: siloId,
        extensions: [sanUris(`urn:tessera:silo:${siloId}`), { name: 'basicConstraints', cA: true, critical: true }],
      });
      expect(refusalCode(() => parseCsr(csr, { expectedSiloId: siloId }))).toBe(PkiErrorCode.CsrRequestsCa);
    });

    it('CSR_REQUESTS_CA when keyCertSign is requested without the CA flag', () => {
      const siloId = newSiloId();
      const csr = buildRawCsr({
        privateKeyPem: key.privateKeyPem,
        commonName: siloId,
        extensions: [sanUris(`urn:tessera:silo:${siloId}`), { name: 'keyUsage', keyCertSign: true }],
      });
      expect(refusalCode(() => parseCsr(csr))).toBe(PkiErrorCode.CsrRequestsCa);
    });

    it('accepts a request for basicConstraints cA=FALSE and reports it', () => {
      const siloId = newSiloId();
      const csr = buildRawCsr({
        privateKeyPem: key.privateKeyPem,
        commonName: siloId,
        extensions: [sanUris(`urn:tessera:silo:${siloId}`), { name: 'basicConstraints', cA: false, critical: true }],
      });
      expect(parseCsr(csr).requestedExtensions).toEqual([
        { oid: '2.5.29.17', name: 'subjectAltName', critical: false },
        { oid: '2.5.29.19', name: 'basicConstraints', critical: true },
      ]);
    });

    it('CSR_IDENTITY_MISMATCH when CN and SAN disagree, or either is missing or malformed', () => {
      const siloId = newSiloId();
      const other = newSiloId();
      const k = key.privateKeyPem;
      const cases = [
        buildRawCsr({ privateKeyPem: k, commonName: other, extensions: [sanUris(`urn:tessera:silo:${siloId}`)] }),
        buildRawCsr({ privateKeyPem: k, commonName: siloId }),
        buildRawCsr({ privateKeyPem: k, commonName: siloId, extensions: [sanUris(`urn:example:${siloId}`)] }),
        buildRawCsr({
          privateKeyPem: k,
          commonName: siloId,
          extensions: [sanUris(`urn:tessera:silo:${siloId}`, `urn:tessera:silo:${other}`)],
        }),
        buildRawCsr({
          privateKeyPem: k,
          commonName: siloId,
          extensions: [sanUris(`urn:tessera:silo:${siloId.toUpperCase()}`)],
        }),
        buildRawCsr({
          privateKeyPem: k,
          subject: [
            { type: '2.5.4.3', shortName: 'CN', value: siloId },
            { type: '2.5.4.10', shortName: 'O', value: 'Hospital' },
          ],
          extensions: [sanUris(`urn:tessera:silo:${siloId}`)],
        }),
        buildRawCsr({
          privateKeyPem: k,
          commonName: siloId,
          extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'hub.example.org' }] }],
        }),
      ];
      for (const csr of cases) expect(refusalCode(() => parseCsr(csr))).toBe(PkiErrorCode.CsrIdentityMismatch);
    });

    it('CSR_IDENTITY_MISMATCH when the CSR names another silo than the one enrolling', () => {
      const csr = createCsr({ privateKeyPem: key.privateKeyPem, siloId: newSiloId() });
      expect(refusalCode(() => parseCsr(csr, { expectedSiloId: newSiloId() }))).toBe(PkiErrorCode.CsrIdentityMismatch);
    });

    it('KEY_TOO_WEAK for a 1024-bit RSA key, CSR_UNSUPPORTED_ALGORITHM for another signature hash', () => {
      const weak = generateKeyPairSync('rsa', { modulusLength: 1024 })
        .privateKey.export({ type: 'pkcs8', format: 'pem' })
        .toString();
      const siloId = newSiloId();
      const weakCsr = buildRawCsr({
        privateKeyPem: weak,
        commonName: siloId,
        extensions: [sanUris(`urn:tessera:silo:${siloId}`)],
      });
      expect(refusalCode(() => parseCsr(weakCsr))).toBe(PkiErrorCode.KeyTooWeak);

      // sha1WithRSAEncryption (1.2.840.113549.1.1.5): relabel the algorithm; refused before the signature is checked.
      const der = Buffer.from(csrDer(createCsr({ privateKeyPem: key.privateKeyPem, siloId })));
      const algorithm = Buffer.from('300d06092a864886f70d01010b0500', 'hex');
      der[der.lastIndexOf(algorithm) + 12] = 0x05;
      expect(refusalCode(() => parseCsr(derToCsrPem(der)))).toBe(PkiErrorCode.CsrUnsupportedAlgorithm);
    });

    it('SILO_ID_INVALID when the expected silo id itself is malformed', () => {
      const csr = createCsr({ privateKeyPem: key.privateKeyPem, siloId: newSiloId() });
      expect(refusalCode(() => parseCsr(csr, { expectedSiloId: 'hospital-a' }))).toBe(PkiErrorCode.SiloIdInvalid);
    });

    it('refuses every single-byte corruption of a valid CSR (property)', () => {
      const siloId = newSiloId();
      const der = csrDer(createCsr({ privateKeyPem: key.privateKeyPem, siloId }));
      fc.assert(
        fc.property(fc.nat({ max: der.length - 1 }), fc.integer({ min: 1, max: 255 }), (index, mask) => {
          const corrupted = Buffer.from(der);
          corrupted[index]! ^= mask;
          const code = refusalCode(() => parseCsr(derToCsrPem(corrupted), { expectedSiloId: siloId }));
          expect(code).not.toBe('accepted');
        }),
        { numRuns: 300 },
      );
    });
  });
});
