import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { SecAggErrorCode } from './secagg.exception';
import { combineShares, SHARE_BYTES, splitSecret } from './secret-sharing';

// An independent GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1 (FIPS 197 section 4.2), written here from
// the standard's definition, to build shares by hand and check that the library reconstructs them.
function gfMultiply(a: number, b: number): number {
  let product = 0;
  for (let i = 0; i < 8; i++) {
    if (b & 1) product ^= a;
    const carry = a & 0x80;
    a = (a << 1) & 0xff;
    if (carry) a ^= 0x1b;
    b >>= 1;
  }
  return product;
}

/** f(x) = Σ c_i x^i over GF(2^8), for each byte position of the secret: one share at x. */
function handShare(coefficients: readonly Uint8Array[], x: number): Uint8Array {
  const share = new Uint8Array(SHARE_BYTES);
  for (let byte = 0; byte < SHARE_BYTES - 1; byte++) {
    let y = 0;
    for (let power = coefficients.length - 1; power >= 0; power--) {
      y = gfMultiply(y, x) ^ coefficients[power]![byte]!;
    }
    share[byte] = y;
  }
  share[SHARE_BYTES - 1] = x;
  return share;
}

const secret = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);

describe('Shamir sharing through shamir-secret-sharing', () => {
  it('uses the field of FIPS 197 (its multiplication examples {57}·{83} = {c1}, {57}·{13} = {fe})', () => {
    expect(gfMultiply(0x57, 0x83)).toBe(0xc1);
    expect(gfMultiply(0x57, 0x13)).toBe(0xfe);
  });

  it('reconstructs shares of a known degree-2 polynomial built by hand (a known-answer test)', async () => {
    const a1 = Uint8Array.from({ length: 32 }, (_, i) => (i * 91 + 5) & 0xff);
    const a2 = Uint8Array.from({ length: 32 }, (_, i) => (i * 53 + 200) & 0xff);
    const shares = [3, 77, 254].map((x) => handShare([secret, a1, a2], x));
    expect(Array.from(await combineShares(shares))).toEqual(Array.from(secret));
    // Two of three points of a degree-2 polynomial give another value at 0.
    expect(Array.from(await combineShares(shares.slice(0, 2)))).not.toEqual(Array.from(secret));
  });

  it('rebuilds from any t of the shares, whichever they are', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 8 }).chain((t) => fc.tuple(fc.constant(t), fc.integer({ min: t, max: 12 }))),
        fc.integer({ min: 0, max: 1000 }),
        async ([t, holders], pick) => {
          const shares = await splitSecret(secret, holders, t);
          const chosen = [...shares].sort((a, b) => ((a[0]! ^ pick) & 0xff) - ((b[0]! ^ pick) & 0xff)).slice(0, t);
          expect(Array.from(await combineShares(chosen))).toEqual(Array.from(secret));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('refuses thresholds below 2, more holders than 255, duplicate x-coordinates and a single share', async () => {
    await expect(splitSecret(secret, 5, 1)).rejects.toMatchObject({ code: SecAggErrorCode.InvalidParameters });
    await expect(splitSecret(secret, 256, 3)).rejects.toMatchObject({ code: SecAggErrorCode.InvalidParameters });
    await expect(splitSecret(new Uint8Array(31), 5, 3)).rejects.toMatchObject({
      code: SecAggErrorCode.InvalidParameters,
    });
    const [s1] = await splitSecret(secret, 3, 2);
    await expect(combineShares([s1!, s1!])).rejects.toMatchObject({ code: SecAggErrorCode.MalformedMessage });
    await expect(combineShares([s1!])).rejects.toMatchObject({ code: SecAggErrorCode.InsufficientShares });
  });
});
