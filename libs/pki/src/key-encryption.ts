import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  KeyObject,
  pbkdf2,
  pbkdf2Sync,
  randomBytes,
} from 'node:crypto';
import { decodePem, encodePem, readDerChildren, readDerElement, type DerElement } from './der.util';
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
  if (octets.length === 0 || octets[0]! >= 0x80) octets.unshift(0);
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
  const job = encryptionJob(privateKeyPem, passphrase, options);
  // 32-byte derived key = AES-256 key length.
  return job.seal(pbkdf2Sync(Buffer.from(passphrase, 'utf8'), job.salt, job.iterations, 32, 'sha256'));
}

/**
 * encryptPrivateKey with the key derivation (600,000 PBKDF2 rounds, a few hundred milliseconds) on libuv's thread
 * pool instead of the event loop. Same output format.
 */
export async function encryptPrivateKeyAsync(
  privateKeyPem: string,
  passphrase: string,
  options: { iterations?: number } = {},
): Promise<string> {
  const job = encryptionJob(privateKeyPem, passphrase, options);
  return job.seal(await deriveKey(passphrase, job.salt, job.iterations));
}

/** Everything of an encryption but the key derivation: validated inputs, the plaintext, and the sealing step. */
function encryptionJob(
  privateKeyPem: string,
  passphrase: string,
  options: { iterations?: number },
): { salt: Buffer; iterations: number; seal(derivedKey: Buffer): string } {
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
  const salt = randomBytes(16);
  return {
    salt,
    iterations,
    seal(derivedKey) {
      const plaintext = key.export({ type: 'pkcs8', format: 'der' });
      const iv = randomBytes(16);
      const cipher = createCipheriv('aes-256-cbc', derivedKey, iv);
      const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      derivedKey.fill(0);
      plaintext.fill(0);
      const pbkdf2Params = der(
        0x30,
        der(0x04, salt),
        derPositiveInteger(iterations),
        der(0x30, OID_HMAC_SHA256, DER_NULL),
      );
      const pbes2Params = der(0x30, der(0x30, OID_PBKDF2, pbkdf2Params), der(0x30, OID_AES256_CBC, der(0x04, iv)));
      const encryptedPrivateKeyInfo = der(0x30, der(0x30, OID_PBES2, pbes2Params), der(0x04, ciphertext));
      return encodePem(encryptedPrivateKeyInfo, 'ENCRYPTED PRIVATE KEY');
    },
  };
}

/** PBKDF2-HMAC-SHA256 to a 32-byte key, on the thread pool. */
function deriveKey(passphrase: string, salt: Buffer, iterations: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    pbkdf2(Buffer.from(passphrase, 'utf8'), salt, iterations, 32, 'sha256', (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
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

/**
 * decryptPrivateKey with the key derivation on libuv's thread pool. Keys in this module's own scheme (PBES2 with
 * PBKDF2-HMAC-SHA256 and AES-256-CBC, what encryptPrivateKey writes) are derived asynchronously; any other scheme
 * OpenSSL reads is decrypted by decryptPrivateKey, synchronously. Same results and errors as decryptPrivateKey.
 */
export async function decryptPrivateKeyAsync(encryptedPem: string, passphrase: string): Promise<string> {
  assertPassphrase(passphrase);
  const encrypted = decodePem(encryptedPem, 'ENCRYPTED PRIVATE KEY');
  if (encrypted === null) {
    throw new PkiException(PkiErrorCode.KeyMalformed, 'Input is not a PEM "ENCRYPTED PRIVATE KEY" block.');
  }
  const scheme = ownScheme(encrypted);
  if (scheme === null) return decryptPrivateKey(encryptedPem, passphrase);
  const derivedKey = await deriveKey(passphrase, scheme.salt, scheme.iterations);
  try {
    const decipher = createDecipheriv('aes-256-cbc', derivedKey, scheme.iv);
    const plaintext = Buffer.concat([decipher.update(scheme.ciphertext), decipher.final()]);
    try {
      return createPrivateKey({ key: plaintext, format: 'der', type: 'pkcs8' })
        .export({ type: 'pkcs8', format: 'pem' })
        .toString();
    } finally {
      plaintext.fill(0);
    }
  } catch (error) {
    throw new PkiException(
      PkiErrorCode.PassphraseInvalid,
      'The private key could not be decrypted: wrong passphrase or corrupted key file.',
      { cause: error },
    );
  } finally {
    derivedKey.fill(0);
  }
}

interface OwnScheme {
  salt: Buffer;
  iterations: number;
  iv: Buffer;
  ciphertext: Buffer;
}

/**
 * The parameters of an EncryptedPrivateKeyInfo in exactly encryptPrivateKey's scheme (RFC 5208 section 6 with RFC
 * 8018 PBES2: PBKDF2 with prf hmacWithSHA256 and no keyLength, AES-256-CBC); null for anything else or anything
 * malformed, which decryptPrivateKey then judges.
 */
function ownScheme(encrypted: Buffer): OwnScheme | null {
  try {
    const top = readDerElement(encrypted, 0);
    if (top.tag !== 0x30 || top.end !== encrypted.length) return null;
    const [algorithm, data] = children(encrypted, top, 2);
    const [pbes2Oid, pbes2Params] = children(encrypted, algorithm!, 2);
    if (!bytesEqual(encrypted, pbes2Oid!, OID_PBES2) || data!.tag !== 0x04) return null;
    const [kdf, cipher] = children(encrypted, pbes2Params!, 2);
    const [kdfOid, kdfParams] = children(encrypted, kdf!, 2);
    const [cipherOid, iv] = children(encrypted, cipher!, 2);
    if (!bytesEqual(encrypted, kdfOid!, OID_PBKDF2) || !bytesEqual(encrypted, cipherOid!, OID_AES256_CBC)) return null;
    const [salt, count, prf] = children(encrypted, kdfParams!, 3);
    if (salt!.tag !== 0x04 || count!.tag !== 0x02 || iv!.tag !== 0x04 || iv!.end - iv!.contentStart !== 16) return null;
    const [prfOid, prfNull] = children(encrypted, prf!, 2);
    if (!bytesEqual(encrypted, prfOid!, OID_HMAC_SHA256) || !bytesEqual(encrypted, prfNull!, DER_NULL)) return null;
    const countBytes = encrypted.subarray(count!.contentStart, count!.end);
    // Positive and at most 2^31 - 1, as encryptPrivateKey writes it (a leading zero octet only before a set top bit).
    if (countBytes.length === 0 || countBytes.length > 4 || (countBytes[0]! & 0x80) !== 0) return null;
    const iterations = countBytes.readUIntBE(0, countBytes.length);
    if (iterations < 1) return null;
    return {
      salt: Buffer.from(encrypted.subarray(salt!.contentStart, salt!.end)),
      iterations,
      iv: Buffer.from(encrypted.subarray(iv!.contentStart, iv!.end)),
      ciphertext: Buffer.from(encrypted.subarray(data!.contentStart, data!.end)),
    };
  } catch {
    return null;
  }
}

/** Exactly `count` children of a SEQUENCE (throws otherwise: the caller answers null). */
function children(der: Buffer, parent: DerElement, count: number): DerElement[] {
  if (parent.tag !== 0x30) throw new Error('not a SEQUENCE');
  const found = readDerChildren(der, parent);
  if (found.length !== count) throw new Error(`expected ${count} elements, found ${found.length}`);
  return found;
}

/** Whether the whole element (tag, length and content) is these bytes. */
function bytesEqual(der: Buffer, element: DerElement, expected: Buffer): boolean {
  return der.subarray(element.start, element.end).equals(expected);
}
