// A silo's colour, derived from its id alone: the same hospital has the same colour in every study, chart and page,
// whatever order the silos come in. The hue comes from a hash of the id; the lightness is lowered until the colour
// has at least 3:1 contrast against the white page (WCAG 2.1, 1.4.11 non-text contrast), so every line and swatch
// stays visible; half the ids (by another bit of the hash) are darker still (4.5:1), so two silos whose hues happen
// to be close usually still differ in lightness. Nothing in the id space guarantees that two silos of one study
// differ: the names beside every swatch, line and table column stay the reference.

/** FNV-1a, 32 bits: a small, well-spread hash of the id's characters. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** sRGB (0–255 each) of an HSL colour (h in degrees, s and l in 0–1). */
export function hslToRgb(h: number, s: number, l: number): [number, number, number] {
  const c = (1 - Math.abs(2 * l - 1)) * s;
  const x = c * (1 - Math.abs(((h / 60) % 2) - 1));
  const m = l - c / 2;
  const [r, g, b] =
    h < 60
      ? [c, x, 0]
      : h < 120
        ? [x, c, 0]
        : h < 180
          ? [0, c, x]
          : h < 240
            ? [0, x, c]
            : h < 300
              ? [x, 0, c]
              : [c, 0, x];
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
}

/** Relative luminance of an sRGB colour (WCAG 2.1 definition). */
export function relativeLuminance([r, g, b]: [number, number, number]): number {
  const lin = (v: number) => {
    const c = v / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** Contrast ratio of a colour against white (1 to 21). */
export function contrastOnWhite(rgb: [number, number, number]): number {
  return 1.05 / (relativeLuminance(rgb) + 0.05);
}

const MIN_CONTRAST = 3;
const DARK_CONTRAST = 4.5;

const hex = (rgb: [number, number, number]) => `#${rgb.map((v) => v.toString(16).padStart(2, '0')).join('')}`;

/**
 * The silo's colour as #rrggbb: hue from the id's hash (360 hues), saturation from the next bits (55–85%), lightness
 * from 50% down in steps until the contrast on white reaches 3:1, or 4.5:1 for the darker half of the ids.
 */
export function siloColour(siloId: string): string {
  const h = fnv1a(siloId);
  const hue = h % 360;
  const saturation = 0.55 + ((h >>> 9) % 31) / 100;
  const contrast = (h >>> 17) & 1 ? DARK_CONTRAST : MIN_CONTRAST;
  for (let l = 0.5; l > 0.1; l -= 0.02) {
    const rgb = hslToRgb(hue, saturation, l);
    if (contrastOnWhite(rgb) >= contrast) return hex(rgb);
  }
  return hex(hslToRgb(hue, saturation, 0.1));
}
