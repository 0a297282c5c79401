import { describe, expect, it } from 'vitest';
import { contrastOnWhite, hslToRgb, relativeLuminance, siloColour } from './silo-colour.js';

/** Deterministic pseudo-random v4-shaped ids (a linear congruential generator; no Math.random in tests). */
function ids(n: number, seed = 7): string[] {
  let x = seed;
  const hex = () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x.toString(16).padStart(8, '0');
  };
  return Array.from({ length: n }, () => {
    const a = hex() + hex() + hex() + hex();
    return `${a.slice(0, 8)}-${a.slice(8, 12)}-4${a.slice(13, 16)}-8${a.slice(17, 20)}-${a.slice(20, 32)}`;
  });
}

const rgbOf = (hex: string): [number, number, number] => [
  parseInt(hex.slice(1, 3), 16),
  parseInt(hex.slice(3, 5), 16),
  parseInt(hex.slice(5, 7), 16),
];

describe('a silo colour', () => {
  it('follows from the id alone: the same id gives the same colour, whatever else is on the page', () => {
    const [a, b] = ids(2);
    expect(siloColour(a!)).toBe(siloColour(a!));
    expect(siloColour(a!)).toMatch(/^#[0-9a-f]{6}$/);
    expect(siloColour(a!)).not.toBe(siloColour(b!));
  });

  it('has at least 3:1 contrast on the white page for every id (WCAG 1.4.11)', () => {
    for (const id of ids(2000)) {
      expect(contrastOnWhite(rgbOf(siloColour(id))), id).toBeGreaterThanOrEqual(3);
    }
  });

  it('makes about half the colours darker (≥ 4.5:1), so close hues usually differ in lightness too', () => {
    const dark = ids(1000).filter((id) => contrastOnWhite(rgbOf(siloColour(id))) >= 4.5).length;
    expect(dark).toBeGreaterThan(400);
    expect(dark).toBeLessThan(700);
  });

  it('spreads ids over the hues: 8 silos rarely share a colour', () => {
    const colours = new Set(ids(8, 11).map(siloColour));
    expect(colours.size).toBe(8);
    const hues = new Set(ids(1000).map((id) => siloColour(id)));
    expect(hues.size).toBeGreaterThan(300);
  });

  it('computes luminance and contrast as WCAG defines them (black 21:1, white 1:1, pure red 4:1)', () => {
    expect(relativeLuminance([255, 255, 255])).toBeCloseTo(1, 10);
    expect(contrastOnWhite([0, 0, 0])).toBeCloseTo(21, 10);
    expect(contrastOnWhite([255, 255, 255])).toBeCloseTo(1, 10);
    expect(contrastOnWhite([255, 0, 0])).toBeCloseTo(3.998, 3);
    expect(hslToRgb(0, 1, 0.5)).toEqual([255, 0, 0]);
    expect(hslToRgb(120, 1, 0.25)).toEqual([0, 128, 0]);
    expect(hslToRgb(240, 1, 0.5)).toEqual([0, 0, 255]);
  });
});
