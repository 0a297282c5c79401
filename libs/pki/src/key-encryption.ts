import { createCipheriv, createPrivateKey, KeyObject, pbkdf2Sync, randomBytes } from 'node:crypto';
import { decodePem, encodePem } from './der.util';
import { PkiErrorCode, PkiException } from './pki.exception';

/**
 * Default PBKDF2-HMAC-SHA256 iteration count for encrypted private keys: 600,000, the OWASP Password Storage Cheat
 * Sheet recommendation (2023) for PBKDF2-HMAC-SHA256. OpenSSL's own default for `-topk8` is only 2048, which is why
 * this module builds the PBES2 structure itself instead of using `KeyObject.export({ cipher })`.
 */
export const DEFAULT_KEY_ENCRYPTION_ITERATIONS = 600_000;
/** Lowest iteration count accepted when a caller overrides the default (tests, constrained devices). */
export const MIN_KEY_ENCRYPTION_ITERATIONS = 100_000;

// DER building blocks for EncryptedPrivateKeyInfo (RFC 5208 section 6) with PBES2 (RFC 8018 section 6.2 and A.4),
// PBKDF2 (RFC 8018 A.2) with PRF hmacWithSHA256 (RFC 8018 B.1.2) and AES-256-CBC (RFC 8018 B.2.5, NIST SP 800-38A).
const OID_PBES2 = Buffer.from('06092a864886f70d01050d', 'hex'); // 1.2.840.113549.1.5.13
const OID_PBKDF2 = Buffer.from('06092a864886f70d01050c', 'hex'); // 1.2.840.113549.1.5.12
const OID_HMAC_SHA256 = Buffer.from('06082a864886f70d0209', 'hex'); // 1.2.840.113549.2.9
const OID_AES256_CBC = Buffer.from('060960864801650304012a', 'hex'); // 2.16.840.1.101.3.4.1.42
const DER_NULL = Buffer.from('0500', 'hex');

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const octets: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) octets.unshift(rest % 256);
  return Buffer.from([0x80 | octets.length, ...octets]);
}

function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

function derPositiveInteger(value: number): Buffer {
  const octets: number[] = [];
  for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) octets.unshift(rest % 256);
  // A set top bit would read as negative in two's complement (X.690 section 8.3.3): prefix a zero octet.
  if (octets.length === 0 || octets[0] >= 0x80) octets.unshift(0);
  return der(0x02, Buffer.from(octets));
}

function assertPassphrase(passphrase: string): void {
  if (typeof passphrase !== 'string' || passphrase.length === 0) {
    throw new PkiException(PkiErrorCode.ArgumentInvalid, 'The passphrase must be a non-empty string.');
  }
}

/**
 * Encrypts a private key as a PKCS#8 `ENCRYPTED PRIVATE KEY` PEM (RFC 5208 section 6, RFC 5958 section 3) using
 * PBES2 = PBKDF2-HMAC-SHA256 (16-byte random salt, `iterations` rounds) + AES-256-CBC (random IV), RFC 8018.
 * The output is readable by OpenSSL and Node's `createPrivateKey({ key, passphrase })`.
 */
export function encryptPrivateKey(
  privateKeyPem: string,
  passphrase: string,
  options: { iterations?: number } = {},
): string {
  assertPassphrase(passphrase);
  const iterations = options.iterations ?? DEFAULT_KEY_ENCRYPTION_ITERATIONS;
  if (!Number.isSafeInteger(iterations) || iterations < MIN_KEY_ENCRYPTION_ITERATIONS || iterations > 2 ** 31 - 1) {
    throw new PkiException(
      PkiErrorCode.ArgumentInvalid,
      `PBKDF2 iterations must be an integer in [${MIN_KEY_ENCRYPTION_ITERATIONS}, 2^31 - 1], got ${iterations}.`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: privateKeyPem, format: 'pem' });
  } catch (error) {
    throw new PkiException(PkiErrorCode.KeyMalformed, 'Cannot read the private key PEM to encrypt.', { cause: error });
  }
  const plaintext = key.export({ type: 'pkcs8', format: 'der' });
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  // 32-byte derived key = AES-256 key length.
  const derivedKey = pbkdf2Sync(Buffer.from(passphrase, 'utf8'), salt, iterations, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', derivedKey, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  derivedKey.fill(0);
  plaintext.fill(0);

  const pbkdf2Params = der(0x30, der(0x04, salt), derPositiveInteger(iterations), der(0x30, OID_HMAC_SHA256, DER_NULL));
  const pbes2Params = der(0x30, der(0x30, OID_PBKDF2, pbkdf2Params), der(0x30, OID_AES256_CBC, der(0x04, iv)));
  const encryptedPrivateKeyInfo = der(0x30, der(0x30, OID_PBES2, pbes2Params), der(0x04, ciphertext));
  return encodePem(encryptedPrivateKeyInfo, 'ENCRYPTED PRIVATE KEY');
}

/**
 * Decrypts a PKCS#8 `ENCRYPTED PRIVATE KEY` PEM (RFC 5208 section 6; any PBES2 scheme OpenSSL supports) and returns
 * the key as unencrypted PKCS#8 PEM. A wrong passphrase (or corrupted ciphertext) is PASSPHRASE_INVALID; input that
 * is not an encrypted-key PEM at all is KEY_MALFORMED.
 */
export function decryptPrivateKey(encryptedPem: string, passphrase: string): string {
  assertPassphrase(passphrase);
  if (decodePem(encryptedPem, 'ENCRYPTED PRIVATE KEY') === null) {
    throw new PkiException(PkiErrorCode.KeyMalformed, 'Input is not a PEM "ENCRYPTED PRIVATE KEY" block.');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: encryptedPem, format: 'pem', passphrase });
  } catch (error) {
    // With CBC a wrong key almost always fails the padding check and otherwise yields bytes that are not a
    // PrivateKeyInfo; both surface here and mean the same thing to the caller.
    throw new PkiException(
      PkiErrorCode.PassphraseInvalid,
      'The private key could not be decrypted: wrong passphrase or corrupted key file.',
      { cause: error },
    );
  }
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}
