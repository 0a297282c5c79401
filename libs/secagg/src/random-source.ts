import { randomFillSync } from 'node:crypto';

/**
 * Where the protocol's randomness comes from: ephemeral private keys, self-mask seeds, share-encryption nonces and the
 * stochastic rounding draws. Behind one interface so tests can replay a run; production uses the OS CSPRNG.
 * (The Shamir polynomials' coefficients come from shamir-secret-sharing's own CSPRNG and are not injectable.)
 */
export interface SecAggRandom {
  /** Fills `bytes` with independent uniform bytes. */
  fill(bytes: Uint8Array): void;
}

/** node:crypto's CSPRNG. */
export const cryptoRandom: SecAggRandom = {
  fill(bytes: Uint8Array): void {
    randomFillSync(bytes);
  },
};

/** `length` fresh random bytes from `random`. */
export function randomBytesFrom(random: SecAggRandom, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  random.fill(bytes);
  return bytes;
}
