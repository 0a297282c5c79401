// Randomness for the noise samplers, behind one small interface so tests can inject a deterministic stream.
// Production code uses CryptoRandomSource (node:crypto, the OS CSPRNG). Samplers only ever ask for uniform 32-bit
// words and derive every other draw from them by exact integer arithmetic, never from floating-point uniforms.

import { createCipheriv, createHash, randomFillSync } from 'node:crypto';

import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';

/** A source of independent, uniformly distributed 32-bit words. */
export interface RandomSource {
  /** An integer uniform on [0, 2^32). */
  nextUint32(): number;
  /** Optional bulk form: fill `out` with independent uniform words (same stream semantics as nextUint32). */
  fillUint32?(out: Uint32Array): void;
}

const WORDS_PER_REFILL = 16_384; // 64 KiB per call into the OS generator: amortises the syscall cost.

/** The production source: node:crypto's CSPRNG (randomFillSync), buffered. */
export class CryptoRandomSource implements RandomSource {
  private readonly words = new Uint32Array(WORDS_PER_REFILL);
  private next = WORDS_PER_REFILL;

  nextUint32(): number {
    if (this.next === WORDS_PER_REFILL) {
      randomFillSync(this.words);
      this.next = 0;
    }
    return this.words[this.next++]!;
  }

  fillUint32(out: Uint32Array): void {
    randomFillSync(out);
  }
}

/**
 * A reproducible stream for tests and replays: the AES-256-CTR keystream under key SHA-256(seed). Statistically as good
 * as the production source, but anyone who knows the seed can predict it: never use it for real noise.
 */
export class SeededRandomSource implements RandomSource {
  private readonly cipher;
  private readonly zeros = new Uint8Array(WORDS_PER_REFILL * 4);
  private words = new Uint32Array(0);
  private next = 0;

  constructor(seed: string | Uint8Array) {
    const key = createHash('sha256').update(seed).digest();
    this.cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  }

  nextUint32(): number {
    if (this.next >= this.words.length) {
      const bytes = this.cipher.update(this.zeros);
      this.words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      this.next = 0;
    }
    return this.words[this.next++]!;
  }
}

let sharedCryptoSource: CryptoRandomSource | undefined;

/** The process-wide production source (lazily created). */
export function defaultRandomSource(): RandomSource {
  sharedCryptoSource ??= new CryptoRandomSource();
  return sharedCryptoSource;
}

const TWO_POW_32 = 4_294_967_296;
const TWO_POW_53 = 9_007_199_254_740_992;

/** An integer uniform on [0, n) for an integer 1 <= n <= 2^53, by rejection (no modulo bias). */
export function uniformInt(rng: RandomSource, n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > TWO_POW_53) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidOption,
      'n',
      `uniformInt needs an integer bound in [1, 2^53]; got ${n}`,
    );
  }
  if (n <= TWO_POW_32) {
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const r = rng.nextUint32();
      if (r < limit) return r % n;
    }
  }
  const limit = TWO_POW_53 - (TWO_POW_53 % n);
  for (;;) {
    const r = (rng.nextUint32() & 0x1fffff) * TWO_POW_32 + rng.nextUint32();
    if (r < limit) return r % n;
  }
}

/** A fair bit. */
export function randomBit(rng: RandomSource): number {
  return rng.nextUint32() & 1;
}

/** Fills `out` with uniform 32-bit words from `rng`, in one call when the source can fill buffers itself. */
export function fillUint32(rng: RandomSource, out: Uint32Array): void {
  if (rng.fillUint32 !== undefined) {
    rng.fillUint32(out);
    return;
  }
  for (let i = 0; i < out.length; i++) out[i] = rng.nextUint32();
}
