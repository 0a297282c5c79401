/** Letters and digits that cannot be mistaken for one another when read aloud or copied by hand (no 0/o, 1/l/i). */
export const TEMPORARY_PASSWORD_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

/**
 * A temporary password for an administrator to hand over: four groups of four characters of
 * TEMPORARY_PASSWORD_ALPHABET (31 symbols, so 16·log2(31) ≈ 79 bits), drawn from the browser's CSPRNG by
 * rejection sampling, so every character is equally likely (no modulo bias). The person must replace it at their
 * first sign-in.
 */
export function temporaryPassword(random: (bytes: Uint8Array) => void = (b) => crypto.getRandomValues(b)): string {
  const n = TEMPORARY_PASSWORD_ALPHABET.length;
  // The largest multiple of n below 256: bytes at or above it are drawn again.
  const limit = 256 - (256 % n);
  const out: string[] = [];
  const buffer = new Uint8Array(32);
  while (out.length < 16) {
    random(buffer);
    for (const byte of buffer) {
      if (byte >= limit) continue;
      out.push(TEMPORARY_PASSWORD_ALPHABET[byte % n]!);
      if (out.length === 16) break;
    }
  }
  return [0, 4, 8, 12].map((i) => out.slice(i, i + 4).join('')).join('-');
}
