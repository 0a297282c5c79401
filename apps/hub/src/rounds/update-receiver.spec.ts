import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Float32StreamCheck } from './update-receiver';

/** Little-endian bytes of `values`, placed at byte `shift` of a larger buffer so views can be unaligned. */
function bytesOf(values: readonly number[], shift = 0): Uint8Array {
  const buffer = new ArrayBuffer(shift + values.length * 4);
  const view = new DataView(buffer, shift);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return new Uint8Array(buffer, shift, values.length * 4);
}

/** Splits `bytes` at the given cut points, copying each piece to its own offset-`shift` buffer (unaligned chunks). */
function chunked(bytes: Uint8Array, cuts: readonly number[], shift: number): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let start = 0;
  for (const p of [...points, bytes.length]) {
    const piece = new Uint8Array(new ArrayBuffer(shift + p - start), shift, p - start);
    piece.set(bytes.subarray(start, p));
    pieces.push(piece);
    start = p;
  }
  return pieces;
}

const finiteFloat = fc.float({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 });

describe('Float32StreamCheck (the update receiver reading floats across chunk boundaries)', () => {
  it('sees the same values however the bytes are chunked and aligned (property)', () => {
    fc.assert(
      fc.property(
        fc.array(finiteFloat, { minLength: 0, maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.integer({ min: 0, max: 3 }),
        (values, cuts, shift) => {
          const bytes = bytesOf(values);
          const check = new Float32StreamCheck();
          for (const piece of chunked(bytes, cuts, shift)) expect(check.push(piece)).toBe(-1);
          const f32 = Float32Array.from(values);
          const expected = f32.reduce((s, v) => s + v * v, 0);
          expect(check.count).toBe(values.length);
          expect(check.pendingBytes).toBe(0);
          expect(Math.abs(check.sumSquares - expected)).toBeLessThanOrEqual(1e-12 * Math.max(1, expected));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('completes a float whose four bytes arrive in four separate chunks', () => {
    const bytes = bytesOf([3, -4]);
    const check = new Float32StreamCheck();
    for (let i = 0; i < bytes.length; i += 1) {
      expect(check.push(bytes.subarray(i, i + 1))).toBe(-1);
      expect(check.count).toBe((i + 1) >> 2);
      expect(check.pendingBytes).toBe((i + 1) % 4);
    }
    expect(check.sumSquares).toBe(25);
  });

  it('reports the stream index of a non-finite value, also when it straddles two chunks', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const bytes = bytesOf([1, 2, 3, bad, 5]);
      for (let cut = 0; cut <= bytes.length; cut += 1) {
        const check = new Float32StreamCheck();
        const first = check.push(bytes.subarray(0, cut));
        const second = first >= 0 ? first : check.push(bytes.subarray(cut));
        expect(first === -1 ? second : first).toBe(3);
      }
    }
  });

  it('reads unaligned chunks (Buffer pool offsets) correctly', () => {
    const values = [0.5, -1.25, 1e-3, 42];
    const bytes = bytesOf(values, 1);
    expect(bytes.byteOffset % 4).toBe(1);
    const check = new Float32StreamCheck();
    expect(check.push(bytes)).toBe(-1);
    expect(check.sumSquares).toBe(values.reduce((s, v) => s + Math.fround(v) ** 2, 0));
  });

  it('keeps an incomplete trailing value pending (the receiver then refuses the length)', () => {
    const check = new Float32StreamCheck();
    check.push(bytesOf([1, 2]).subarray(0, 6));
    expect(check.count).toBe(1);
    expect(check.pendingBytes).toBe(2);
  });
});
