import { describe, expect, it } from 'vitest';
import {
  cielab,
  contrastOnWhite,
  contrastRatio,
  deltaE2000,
  MEAN_LINE_INK,
  PAGE_BACKGROUND,
  relativeLuminance,
  rgbOfHex,
  SILO_PALETTE,
  siloColours,
  type RegisteredSilo,
} from './silo-colour.js';

/** The smallest CIEDE2000 distance between two palette colours, or a palette colour and the mean line's ink. */
const MIN_DELTA_E = 15;

/** Silos registered a day apart, with deterministic v4-shaped ids (no Math.random in tests). */
function registered(n: number, firstDay = 1): RegisteredSilo[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `00000000-0000-4000-8000-${(0xa000 + (firstDay + i) * 7919).toString(16).padStart(12, '0')}`,
    createdAt: new Date(Date.UTC(2026, 10, firstDay + i)).toISOString(),
  }));
}

const labOf = (hex: string) => cielab(rgbOfHex(hex));

describe('the silo palette', () => {
  it('has ten distinct colours, each with at least 3:1 contrast on the page background (WCAG 1.4.11)', () => {
    expect(new Set(SILO_PALETTE).size).toBe(10);
    for (const hex of SILO_PALETTE) {
      expect(hex).toMatch(/^#[0-9a-f]{6}$/);
      expect(contrastRatio(rgbOfHex(hex), rgbOfHex(PAGE_BACKGROUND)), hex).toBeGreaterThanOrEqual(3);
      expect(contrastOnWhite(rgbOfHex(hex)), hex).toBeGreaterThanOrEqual(3);
    }
  });

  it(`keeps every two colours, and each colour and the mean line's ink, at least ΔE2000 ${MIN_DELTA_E} apart`, () => {
    const colours = [...SILO_PALETTE, MEAN_LINE_INK];
    for (let i = 0; i < colours.length; i += 1) {
      for (let j = i + 1; j < colours.length; j += 1) {
        const d = deltaE2000(labOf(colours[i]!), labOf(colours[j]!));
        expect(d, `${colours[i]} vs ${colours[j]}`).toBeGreaterThanOrEqual(MIN_DELTA_E);
      }
    }
  });

  it('sets a floor that two nearly equal magentas (as Cleveland and Hungarian once had) fall under', () => {
    expect(deltaE2000(labOf('#c22fb8'), labOf('#b8329f'))).toBeLessThan(MIN_DELTA_E);
  });
});

describe('silo colours', () => {
  it('deals the palette in registration order, whatever order the list comes in', () => {
    const silos = registered(4);
    const colours = siloColours([...silos].reverse());
    expect(silos.map((s) => colours.of(s.id))).toEqual(SILO_PALETTE.slice(0, 4));
  });

  it('keeps a silo’s colour when more silos are registered, and across the studies it appears in', () => {
    const early = registered(3);
    const later = [...early, ...registered(5, 20)];
    const before = siloColours(early);
    const after = siloColours(later);
    for (const s of early) expect(after.of(s.id)).toBe(before.of(s.id));
    // Two studies showing different subsets of the hub's silos: the shared silo has one colour.
    const [a, b, c] = [later[1]!, later[4]!, later[6]!];
    const studyOne = [a, b].map((s) => after.of(s.id));
    const studyTwo = [a, c].map((s) => after.of(s.id));
    expect(studyOne[0]).toBe(studyTwo[0]);
  });

  it('gives the first ten silos of a hub ten different colours, hence any of them shown together differ', () => {
    const silos = registered(10);
    const colours = siloColours(silos);
    const used = silos.map((s) => colours.of(s.id));
    expect(new Set(used).size).toBe(10);
    for (let i = 0; i < used.length; i += 1) {
      for (let j = i + 1; j < used.length; j += 1) {
        expect(deltaE2000(labOf(used[i]!), labOf(used[j]!))).toBeGreaterThanOrEqual(MIN_DELTA_E);
      }
    }
    // The eleventh shares the first one's colour: the known limit, documented.
    const eleven = registered(11);
    expect(siloColours(eleven).of(eleven[10]!.id)).toBe(SILO_PALETTE[0]);
  });

  it('breaks a tie on the registration time by id, and colours an unlisted id from its hash, stably', () => {
    const at = '2026-11-01T00:00:00.000Z';
    const colours = siloColours([
      { id: 'b0000000-0000-4000-8000-000000000000', createdAt: at },
      { id: 'a0000000-0000-4000-8000-000000000000', createdAt: at },
    ]);
    expect(colours.of('a0000000-0000-4000-8000-000000000000')).toBe(SILO_PALETTE[0]);
    const stranger = 'c0000000-0000-4000-8000-000000000000';
    expect(SILO_PALETTE).toContain(colours.of(stranger));
    expect(siloColours([]).of(stranger)).toBe(colours.of(stranger));
  });
});

describe('colour arithmetic', () => {
  it('computes luminance and contrast as WCAG defines them (black 21:1, white 1:1, pure red 4:1)', () => {
    expect(relativeLuminance([255, 255, 255])).toBeCloseTo(1, 10);
    expect(contrastOnWhite([0, 0, 0])).toBeCloseTo(21, 10);
    expect(contrastOnWhite([255, 255, 255])).toBeCloseTo(1, 10);
    expect(contrastOnWhite([255, 0, 0])).toBeCloseTo(3.998, 3);
    expect(contrastRatio([0, 0, 0], [255, 255, 255])).toBeCloseTo(contrastRatio([255, 255, 255], [0, 0, 0]), 12);
  });

  it('converts sRGB to L*a*b* (D65): white is L* 100, mid grey #777777 about L* 50', () => {
    const [l, a, b] = cielab([255, 255, 255]);
    expect(l).toBeCloseTo(100, 2);
    expect(a).toBeCloseTo(0, 2);
    expect(b).toBeCloseTo(0, 2);
    expect(cielab([0x77, 0x77, 0x77])[0]).toBeCloseTo(50.03, 1);
  });

  // Sharma, Wu and Dalal (2005), table 1: pairs 1, 7, 13, 17, 21, 25 and 34 with their published ΔE00.
  it.each([
    [[50, 2.6772, -79.7751], [50, 0, -82.7485], 2.0425],
    [[50, 0, 0], [50, -1, 2], 2.3669],
    [[50, 2.49, -0.001], [50, -2.49, 0.0011], 7.2195],
    [[50, 2.5, 0], [73, 25, -18], 27.1492],
    [[50, 2.5, 0], [50, 3.1736, 0.5854], 1.0],
    [[60.2574, -34.0099, 36.2677], [60.4626, -34.1751, 39.4387], 1.2644],
    [[2.0776, 0.0795, -1.135], [0.9033, -0.0636, -0.5514], 0.9082],
  ])('gives CIEDE2000 %j vs %j = %d (published test data)', (a, b, expected) => {
    expect(deltaE2000(a, b)).toBeCloseTo(expected, 4);
    expect(deltaE2000(b, a)).toBeCloseTo(expected, 4);
  });
});
