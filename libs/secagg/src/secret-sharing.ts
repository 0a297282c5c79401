// Shamir secret sharing (Shamir 1979) of 32-byte secrets through shamir-secret-sharing (Privy; audited by Cure53 and
// Zellic): byte-wise polynomials over GF(2^8) with the AES field polynomial x^8 + x^4 + x^3 + x + 1. A share is the
// 32 evaluated bytes followed by its x-coordinate (distinct, random, non-zero), 33 bytes in all.

import { combine, split } from 'shamir-secret-sharing';

import { SecAggErrorCode, SecAggException } from './secagg.exception';

/** Bytes of every shared secret (an X25519 private key or a self-mask seed). */
export const SECRET_BYTES = 32;
/** Bytes of one share: the secret's length plus the x-coordinate. */
export const SHARE_BYTES = SECRET_BYTES + 1;

/** Splits a 32-byte secret into `holders` shares, any `threshold` of which rebuild it (2 ≤ t ≤ holders ≤ 255). */
export async function splitSecret(secret: Uint8Array, holders: number, threshold: number): Promise<Uint8Array[]> {
  if (secret.length !== SECRET_BYTES) {
    throw new SecAggException(SecAggErrorCode.InvalidParameters, `A shared secret must be ${SECRET_BYTES} bytes.`);
  }
  if (!Number.isInteger(threshold) || threshold < 2 || holders < threshold || holders > 255) {
    throw new SecAggException(
      SecAggErrorCode.InvalidParameters,
      `Shamir sharing needs 2 ≤ threshold ≤ holders ≤ 255, got threshold ${threshold} and ${holders} holders.`,
    );
  }
  // The library checks `constructor === Uint8Array`: a Buffer (a subclass) would be refused.
  return split(new Uint8Array(secret), holders, threshold);
}

/**
 * Rebuilds a secret from at least two shares with distinct non-zero x-coordinates. Shamir reconstruction cannot tell
 * a wrong result from a right one: callers check the result against a commitment or a public key.
 */
export async function combineShares(shares: readonly Uint8Array[]): Promise<Uint8Array> {
  if (shares.length < 2) {
    throw new SecAggException(
      SecAggErrorCode.InsufficientShares,
      'At least two shares are needed to rebuild a secret.',
    );
  }
  const xs = new Set<number>();
  for (const share of shares) {
    const x = share[SHARE_BYTES - 1];
    if (share.length !== SHARE_BYTES || x === undefined || x === 0 || xs.has(x)) {
      throw new SecAggException(
        SecAggErrorCode.MalformedMessage,
        `Shares must be ${SHARE_BYTES} bytes with distinct non-zero x-coordinates.`,
      );
    }
    xs.add(x);
  }
  return new Uint8Array(await combine(shares.map((s) => new Uint8Array(s))));
}
