import { randomBytes } from 'node:crypto';
import { decodePem, DerFormatError, encodePem, readDerElement } from './der.util';
import { forge, ForgeCertificate, ForgeName, ForgeNameAttribute, fromBinary, toBinary } from './forge-adapter';
import { PkiErrorCode, PkiException } from './pki.exception';

/**
 * Clock-skew allowance, in milliseconds: every certificate's notBefore is set this far before issuance so that a peer
 * whose clock runs up to five minutes behind the hub still accepts a certificate issued "now".
 */
export const CLOCK_SKEW_ALLOWANCE_MS = 5 * 60 * 1000;
/** Milliseconds per day. */
export const MS_PER_DAY = 24 * 60 * 60 * 1000;
/** Longest validity this library will issue, in days (ten years; only a root CA should come near it). */
export const MAX_VALIDITY_DAYS = 3650;

/**
 * A fresh random serial number as forge hex: 128 random bits (RFC 5280 section 4.1.2.2 allows up to 20 octets and
 * requires a positive integer; CA/Browser Forum Baseline Requirements section 7.1 ask for at least 64 random bits).
 * Encoded as minimal two's complement: a zero octet is prepended when the top bit is set, leading zero octets that
 * would make the DER INTEGER non-minimal are dropped.
 */
export function randomSerialHex(): string {
  for (;;) {
    const bytes = randomBytes(16);
    let start = 0;
    while (start < bytes.length && bytes[start] === 0) start++;
    if (start === bytes.length) continue; // zero is not a valid serial; probability 2^-128
    const magnitude = bytes.subarray(start);
    const prefix = magnitude[0]! >= 0x80 ? '00' : '';
    return prefix + magnitude.toString('hex');
  }
}

/** X.509 times have whole-second precision (RFC 5280 section 4.1.2.5): truncate so issued values round-trip. */
export function floorToSecond(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

/** Validates a validity period in days: integer in [1, MAX_VALIDITY_DAYS]. */
export function assertValidityDays(validityDays: number): void {
  if (!Number.isInteger(validityDays) || validityDays < 1 || validityDays > MAX_VALIDITY_DAYS) {
    throw new PkiException(
      PkiErrorCode.ArgumentInvalid,
      `validityDays must be an integer in [1, ${MAX_VALIDITY_DAYS}], got ${validityDays}.`,
    );
  }
}

/** Validates an injected clock reading. */
export function assertDate(now: Date, what = 'now'): void {
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
    throw new PkiException(PkiErrorCode.ArgumentInvalid, `${what} must be a valid Date.`);
  }
}

/** The validity window for a certificate issued at `now`: [now - skew allowance, now + validityDays], whole seconds. */
export function validityWindow(now: Date, validityDays: number): { notBefore: Date; notAfter: Date } {
  assertDate(now);
  assertValidityDays(validityDays);
  const issuedAt = floorToSecond(now).getTime();
  return {
    notBefore: new Date(issuedAt - CLOCK_SKEW_ALLOWANCE_MS),
    notAfter: new Date(issuedAt + validityDays * MS_PER_DAY),
  };
}

/** Decodes a `CERTIFICATE` PEM to DER, checking the outer DER framing; throws CERTIFICATE_MALFORMED. */
export function certificateDer(certificatePem: string): Buffer {
  const der = typeof certificatePem === 'string' ? decodePem(certificatePem, 'CERTIFICATE') : null;
  if (der === null) {
    throw new PkiException(PkiErrorCode.CertificateMalformed, 'Input is not a single PEM "CERTIFICATE" block.');
  }
  try {
    const outer = readDerElement(der, 0);
    if (outer.tag !== 0x30 || outer.end !== der.length) throw new DerFormatError('not one DER SEQUENCE');
  } catch (error) {
    throw new PkiException(PkiErrorCode.CertificateMalformed, 'Certificate DER framing is invalid.', { cause: error });
  }
  return der;
}

/** Parses a certificate PEM with forge; throws CERTIFICATE_MALFORMED (forge also refuses non-RSA keys). */
export function toForgeCertificate(certificatePem: string): ForgeCertificate {
  const der = certificateDer(certificatePem);
  try {
    return forge.pki.certificateFromAsn1(forge.asn1.fromDer(toBinary(der), { strict: true, parseAllBytes: true }));
  } catch (error) {
    throw new PkiException(
      PkiErrorCode.CertificateMalformed,
      'Certificate cannot be parsed as an X.509 v3 RSA certificate.',
      { cause: error },
    );
  }
}

/** Serialises a forge certificate as PEM. */
export function forgeCertificateToPem(cert: ForgeCertificate): string {
  return encodePem(fromBinary(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes()), 'CERTIFICATE');
}

/** ASN.1 universal tag of UTF8String (X.680). */
const UTF8_STRING_TAG = 12;
/** RFC 5280 upper bound ub-common-name, in characters (Appendix A.1). */
export const MAX_COMMON_NAME_LENGTH = 64;

/**
 * A name with a single CN attribute encoded as UTF8String, which RFC 5280 section 4.1.2.4 requires for new
 * certificates (forge's default would be PrintableString, which cannot hold every name).
 */
export function commonNameAttributes(commonName: string): ForgeNameAttribute[] {
  return [{ type: '2.5.4.3', shortName: 'CN', value: commonName, valueTagClass: UTF8_STRING_TAG }];
}

/** Validates a human-chosen CN: 1..64 characters, no control characters. */
export function assertCommonName(commonName: string): void {
  if (typeof commonName !== 'string' || commonName.length === 0 || commonName.length > MAX_COMMON_NAME_LENGTH) {
    throw new PkiException(
      PkiErrorCode.ArgumentInvalid,
      `commonName must have 1 to ${MAX_COMMON_NAME_LENGTH} characters, got ${JSON.stringify(commonName)}.`,
    );
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(commonName))
    throw new PkiException(PkiErrorCode.ArgumentInvalid, 'commonName must not contain control characters.');
}

/**
 * Attributes of a parsed name, as text, ready to be written into another certificate. forge leaves parsed UTF8String
 * values as raw UTF-8 bytes but UTF-8-encodes values on output, so they are decoded here to avoid double encoding.
 */
export function decodedNameAttributes(name: ForgeName): ForgeNameAttribute[] {
  return name.attributes.map((attr) => ({ ...attr, value: nameAttributeText(attr) }));
}

/** An attribute value as a JavaScript string (UTF8String decoded; other string types are ASCII subsets). */
export function nameAttributeText(attr: ForgeNameAttribute): string {
  if (typeof attr.value !== 'string') {
    throw new PkiException(PkiErrorCode.CertificateMalformed, `Name attribute ${attr.type ?? '?'} is not a string.`);
  }
  return attr.valueTagClass === UTF8_STRING_TAG ? fromBinary(attr.value).toString('utf8') : attr.value;
}

/** The single CN of a name, or null when there is none; throws when there are several. */
export function commonNameOf(name: ForgeName): string | null {
  const cns = name.attributes.filter((attr) => attr.type === '2.5.4.3');
  if (cns.length > 1) throw new PkiException(PkiErrorCode.CertificateMalformed, 'Name has more than one CN.');
  return cns.length === 1 ? nameAttributeText(cns[0]!) : null;
}
