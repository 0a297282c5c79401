// A silo's colour. Two silos shown together must never look alike, and a hospital must keep its colour from one
// study to the next. A colour derived from the id alone cannot promise the first (two hashes may land on nearby
// hues: Cleveland and Hungarian were both magenta), so colours come from a fixed palette of ten well-separated
// colours, dealt in the order the silos were registered on the hub (createdAt, then id). Silos are never deleted,
// so that order only grows at its end: a silo keeps its slot, hence its colour, on every page and in every study;
// and the first ten silos of a hub all differ. Past ten, silo k shares the colour of silo k - 10 (the names beside
// every swatch, line and table column stay the reference). Every palette colour has at least 3:1 contrast on the
// page background (WCAG 2.1, 1.4.11 non-text contrast) and differs from every other, and from the ink of the mean
// line, by a CIEDE2000 distance of at least 15 (about three times a just-noticeable difference for lines).

/** The palette, in the order it is dealt: the first four are the most distinct from each other. */
export const SILO_PALETTE: readonly string[] = [
  '#1d4e9e', // blue
  '#d1560f', // orange
  '#1e7a2e', // green
  '#d0329f', // magenta
  '#0a87c8', // sky
  '#a8203c', // crimson
  '#0f8583', // teal
  '#7a4fb5', // violet
  '#8c6d1f', // ochre
  '#b47878', // rose
];

/** The page background (styles.css --bg), darker than the cards: contrast is checked against it. */
export const PAGE_BACKGROUND = '#f5f7fa';
/** The ink of the charts' mean line (metric-charts.tsx): silo lines must not look like it. */
export const MEAN_LINE_INK = '#1b2430';

export type Rgb = [number, number, number];

export function rgbOfHex(hex: string): Rgb {
  return [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16)];
}

const linear = (v: number) => {
  const c = v / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
};

/** Relative luminance of an sRGB colour (WCAG 2.1 definition). */
export function relativeLuminance([r, g, b]: Rgb): number {
  return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
}

/** WCAG 2.1 contrast ratio of two colours (1 to 21). */
export function contrastRatio(a: Rgb, b: Rgb): number {
  const [hi, lo] = [relativeLuminance(a), relativeLuminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** Contrast ratio of a colour against white (1 to 21). */
export function contrastOnWhite(rgb: Rgb): number {
  return contrastRatio(rgb, [255, 255, 255]);
}

/** CIE L*a*b* (D65 white) of an sRGB colour. */
export function cielab(rgb: Rgb): [number, number, number] {
  const [r, g, b] = rgb.map(linear) as Rgb;
  const x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047;
  const y = 0.2126729 * r + 0.7151522 * g + 0.072175 * b;
  const z = (0.0193339 * r + 0.119192 * g + 0.9503041 * b) / 1.08883;
  const f = (t: number) => (t > 216 / 24389 ? Math.cbrt(t) : ((24389 / 27) * t + 16) / 116);
  const [fx, fy, fz] = [f(x), f(y), f(z)];
  return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)];
}

const rad = (deg: number) => (deg * Math.PI) / 180;
const deg = (r: number) => (r * 180) / Math.PI;

/**
 * CIEDE2000 colour difference of two L*a*b* colours (kL = kC = kH = 1), as given by G. Sharma, W. Wu and E. N.
 * Dalal, "The CIEDE2000 color-difference formula: implementation notes, supplementary test data, and mathematical
 * observations", Color Research & Application 30(1), 2005, equations 1–17.
 */
export function deltaE2000(lab1: readonly number[], lab2: readonly number[]): number {
  const [l1 = 0, a1 = 0, b1 = 0] = lab1;
  const [l2 = 0, a2 = 0, b2 = 0] = lab2;
  const cMean = (Math.hypot(a1, b1) + Math.hypot(a2, b2)) / 2;
  const g = 0.5 * (1 - Math.sqrt(cMean ** 7 / (cMean ** 7 + 25 ** 7)));
  const [ap1, ap2] = [(1 + g) * a1, (1 + g) * a2];
  const [cp1, cp2] = [Math.hypot(ap1, b1), Math.hypot(ap2, b2)];
  const hueOf = (b: number, ap: number) => (b === 0 && ap === 0 ? 0 : (deg(Math.atan2(b, ap)) + 360) % 360);
  const [hp1, hp2] = [hueOf(b1, ap1), hueOf(b2, ap2)];
  const dL = l2 - l1;
  const dC = cp2 - cp1;
  let dh = 0;
  if (cp1 * cp2 !== 0) {
    dh = hp2 - hp1;
    if (dh > 180) dh -= 360;
    else if (dh < -180) dh += 360;
  }
  const dH = 2 * Math.sqrt(cp1 * cp2) * Math.sin(rad(dh / 2));
  const lMean = (l1 + l2) / 2;
  const cpMean = (cp1 + cp2) / 2;
  let hMean = hp1 + hp2;
  if (cp1 * cp2 !== 0) {
    if (Math.abs(hp1 - hp2) <= 180) hMean = (hp1 + hp2) / 2;
    else hMean = hp1 + hp2 < 360 ? (hp1 + hp2 + 360) / 2 : (hp1 + hp2 - 360) / 2;
  }
  const t =
    1 -
    0.17 * Math.cos(rad(hMean - 30)) +
    0.24 * Math.cos(rad(2 * hMean)) +
    0.32 * Math.cos(rad(3 * hMean + 6)) -
    0.2 * Math.cos(rad(4 * hMean - 63));
  const dTheta = 30 * Math.exp(-(((hMean - 275) / 25) ** 2));
  const rc = 2 * Math.sqrt(cpMean ** 7 / (cpMean ** 7 + 25 ** 7));
  const sl = 1 + (0.015 * (lMean - 50) ** 2) / Math.sqrt(20 + (lMean - 50) ** 2);
  const sc = 1 + 0.045 * cpMean;
  const sh = 1 + 0.015 * cpMean * t;
  const rt = -Math.sin(rad(2 * dTheta)) * rc;
  return Math.sqrt((dL / sl) ** 2 + (dC / sc) ** 2 + (dH / sh) ** 2 + rt * (dC / sc) * (dH / sh));
}

/** FNV-1a, 32 bits: a small, well-spread hash of the id's characters. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A silo as the palette needs it: its id and when it was registered. */
export interface RegisteredSilo {
  id: string;
  createdAt: string;
}

/** Colours of the silos a hub knows, by id; `of` answers any id (see siloColours). */
export interface SiloColours {
  of(siloId: string): string;
}

/**
 * The colour of every silo of the hub: palette slots dealt in registration order (createdAt, then id). An id the
 * list does not hold (not loaded yet, or registered since) gets a slot from a hash of its id: stable, but with no
 * promise to differ from the others.
 */
export function siloColours(silos: readonly RegisteredSilo[]): SiloColours {
  const ordered = [...silos].sort((a, b) =>
    a.createdAt === b.createdAt ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : a.createdAt < b.createdAt ? -1 : 1,
  );
  const slot = new Map(ordered.map((s, i) => [s.id, i % SILO_PALETTE.length]));
  return {
    of: (siloId) => SILO_PALETTE[slot.get(siloId) ?? fnv1a(siloId) % SILO_PALETTE.length]!,
  };
}

/** Colours while the hub's silo list is not at hand: from each id's hash alone. */
export const UNLISTED_SILO_COLOURS: SiloColours = siloColours([]);
