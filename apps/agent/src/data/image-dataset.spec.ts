import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { ImageSchema } from '@tessera/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { augmentImage, prepareImages } from './image-dataset';
import { decodeImage, ImageFileError } from './image-decoder';

const folder = mkdtempSync(join(tmpdir(), 'tessera-images-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** A grey PNG (or JPEG) whose pixel (r, c) is `value(r, c)`. */
async function writeGrey(
  name: string,
  height: number,
  width: number,
  value: (r: number, c: number) => number,
  jpeg = false,
) {
  const pixels = Buffer.alloc(height * width);
  for (let r = 0; r < height; r++) for (let c = 0; c < width; c++) pixels[r * width + c] = value(r, c);
  const image = sharp(pixels, { raw: { width, height, channels: 1 } });
  await (jpeg ? image.jpeg({ quality: 100 }) : image.png()).toFile(join(folder, name));
}

const schema = (overrides: Partial<ImageSchema['image']> = {}): ImageSchema => ({
  kind: 'images',
  fileColumn: 'file',
  label: { column: 'label', operator: 'class', classes: ['0', '1', '2'] },
  image: { color: 'grayscale', resize: 'stretch', normalization: { mean: [0.5], std: [0.5] }, ...overrides },
  split: { testFraction: 0.3, salt: 'unit-test/images/v1' },
});
const shape = { height: 4, width: 4, channels: 1 } as const;

beforeAll(async () => {
  for (let i = 0; i < 12; i++) await writeGrey(`ok-${i}.png`, 4, 4, (r, c) => (r * 4 + c) * 16 + i);
  await writeGrey('big.png', 8, 8, () => 255);
  await writeGrey('photo.jpg', 4, 4, () => 0, true);
  writeFileSync(join(folder, 'broken.png'), 'not an image at all');
});

const manifest = [
  'file,label',
  ...Array.from({ length: 12 }, (_, i) => `ok-${i}.png,${i % 3}`),
  'big.png,1',
  'photo.jpg,2',
  'missing.png,0',
  'broken.png,1',
  '../outside.png,1',
  'ok-0.png,7',
  'ok-1.png,',
].join('\n');

describe('decodeImage', () => {
  it('normalises 8-bit values as (v/255 − mean) / std, row-major', async () => {
    const x = await decodeImage(join(folder, 'ok-0.png'), schema().image, shape);
    expect(x).toHaveLength(16);
    expect(x[0]).toBeCloseTo((0 / 255 - 0.5) / 0.5, 6);
    expect(x[5]).toBeCloseTo((80 / 255 - 0.5) / 0.5, 6);
  });

  it('resizes a larger image, and refuses it when the plan requires the exact size', async () => {
    const x = await decodeImage(join(folder, 'big.png'), schema().image, shape);
    expect(Array.from(x)).toEqual(new Array(16).fill(1));
    await expect(
      decodeImage(join(folder, 'big.png'), schema({ requireSize: { height: 4, width: 4 } }).image, shape),
    ).rejects.toMatchObject({ problem: 'wrong-size' });
  });

  it('gives three channels for rgb and refuses a file that is not an image', async () => {
    const rgb = await decodeImage(
      join(folder, 'ok-3.png'),
      { ...schema().image, color: 'rgb', normalization: { mean: [0, 0, 0], std: [1, 1, 1] } },
      { ...shape, channels: 3 },
    );
    expect(rgb).toHaveLength(48);
    expect(rgb[0]).toBe(rgb[1]);
    const error = await decodeImage(join(folder, 'broken.png'), schema().image, shape).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImageFileError);
    expect((error as ImageFileError).problem).toBe('unreadable');
  });
});

describe('prepareImages', () => {
  it('keeps every good image, and counts each bad file and row by reason without failing', async () => {
    const data = await prepareImages({ manifest, folder, schema: schema(), shape });
    expect(data.train.n + data.test.n).toBe(14); // 12 ok, big (resized), photo
    expect(data.test.n).toBeGreaterThan(0);
    expect(data.fileProblems).toEqual(
      expect.arrayContaining([
        { problem: 'missing', files: 1, examples: ['missing.png'] },
        { problem: 'unreadable', files: 1, examples: ['broken.png'] },
        { problem: 'outside-folder', files: 1, examples: ['../outside.png'] },
      ]),
    );
    expect(data.dropped).toEqual([
      { reason: 'unknown-level', rows: 1, firstRow: 19 },
      { reason: 'missing-label', rows: 1, firstRow: 20 },
    ]);
    expect(data.cached).toBe(true);
  });

  it('streams the same rows from disk as it caches, holding no decoded image when over budget', async () => {
    const cached = await prepareImages({ manifest, folder, schema: schema(), shape });
    const streamed = await prepareImages({ manifest, folder, schema: schema(), shape, cacheBytes: 0 });
    expect(streamed.cached).toBe(false);
    expect(Array.from(streamed.train.y)).toEqual(Array.from(cached.train.y));
    const indices = Int32Array.from({ length: cached.train.n }, (_, i) => cached.train.n - 1 - i);
    const a = new Float32Array(cached.train.n * 16);
    const b = new Float32Array(cached.train.n * 16);
    await cached.train.readPlain(indices, a);
    await streamed.train.readPlain(indices, b);
    expect(b).toEqual(a);
  });

  it('splits by the keyed hash of each row alone: adding rows moves no other row', async () => {
    const small = await prepareImages({
      manifest: manifest.split('\n').slice(0, 8).join('\n'),
      folder,
      schema: schema(),
      shape,
    });
    const full = await prepareImages({ manifest, folder, schema: schema(), shape });
    const labels = async (split: typeof small.test) => {
      const out = new Float32Array(split.n * 16);
      await split.readPlain(
        Int32Array.from({ length: split.n }, (_, i) => i),
        out,
      );
      return Array.from({ length: split.n }, (_, i) => out[i * 16 + 1]);
    };
    const smallTest = await labels(small.test);
    const fullTest = await labels(full.test);
    expect(fullTest.filter((v) => smallTest.includes(v))).toEqual(smallTest);
  });

  it('refuses a manifest without the plan’s columns', async () => {
    await expect(prepareImages({ manifest: 'path,label\na.png,1', folder, schema: schema(), shape })).rejects.toThrow(
      "the manifest has no column 'file'",
    );
  });
});

describe('augmentImage', () => {
  const base = Float32Array.from({ length: 16 }, (_, i) => i + 1);
  it('flips horizontally when the draw is below 1/2', () => {
    const image = base.slice();
    augmentImage(
      image,
      new Float32Array(16),
      shape,
      { ...schema().image, augmentation: { horizontalFlip: true } },
      () => 0.1,
    );
    expect(Array.from(image.slice(0, 4))).toEqual([4, 3, 2, 1]);
    const kept = base.slice();
    augmentImage(
      kept,
      new Float32Array(16),
      shape,
      { ...schema().image, augmentation: { horizontalFlip: true } },
      () => 0.9,
    );
    expect(kept).toEqual(base);
  });

  it('crops the zero-padded image: offsets −p..p fill the border with zeros', () => {
    const image = base.slice();
    // random() = 0 gives the offsets (−1, −1): the image moves one pixel down and right.
    augmentImage(
      image,
      new Float32Array(16),
      shape,
      { ...schema().image, augmentation: { randomCrop: { padding: 1 } } },
      () => 0,
    );
    expect(Array.from(image.slice(0, 8))).toEqual([0, 0, 0, 0, 0, 1, 2, 3]);
  });
});
