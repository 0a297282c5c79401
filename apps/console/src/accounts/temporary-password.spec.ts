import { describe, expect, it } from 'vitest';
import { TEMPORARY_PASSWORD_ALPHABET, temporaryPassword } from './temporary-password.js';

describe('temporaryPassword', () => {
  it('is four groups of four unambiguous characters, long enough for the hub', () => {
    for (let i = 0; i < 50; i++) {
      const p = temporaryPassword();
      expect(p).toMatch(/^[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}$/);
      expect(p).not.toMatch(/[01ilo]/);
      expect(p.length).toBeGreaterThanOrEqual(12);
    }
  });

  it('skips bytes that would bias the draw', () => {
    // 248 = 8·31 is the first byte past the last whole multiple of 31: it must be drawn again, never used.
    const bytes = [248, 255, 0, 30, 31, 247];
    let k = 0;
    const p = temporaryPassword((b) => {
      for (let i = 0; i < b.length; i++) b[i] = bytes[k++ % bytes.length]!;
    });
    const a = TEMPORARY_PASSWORD_ALPHABET;
    // Usable bytes in order: 0, 30, 31, 247 → a[0], a[30], a[0], a[247 % 31].
    expect(p.slice(0, 4)).toBe(`${a[0]}${a[30]}${a[0]}${a[247 % 31]}`);
  });

  it('draws every character about equally often', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      for (const c of temporaryPassword().replaceAll('-', '')) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    expect(counts.size).toBe(TEMPORARY_PASSWORD_ALPHABET.length);
    const expected = (2000 * 16) / TEMPORARY_PASSWORD_ALPHABET.length;
    // Chi-square with 30 degrees of freedom: 59.7 is its 0.999 quantile, so a fair draw fails once in a thousand runs.
    let chi = 0;
    for (const n of counts.values()) chi += (n - expected) ** 2 / expected;
    expect(chi).toBeLessThan(59.7);
  });
});
