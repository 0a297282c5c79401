import sharp from 'sharp';
import type { ImageTransform } from '@tessera/protocol';

/** Why one image file cannot be used. Decided from that file alone. */
export type ImageFileProblem = 'missing' | 'unreadable' | 'wrong-size' | 'outside-folder';

/** A file that cannot be used, with the reason; never its content. */
export class ImageFileError extends Error {
  constructor(
    readonly problem: ImageFileProblem,
    message: string,
  ) {
    super(message);
    this.name = 'ImageFileError';
  }
}

/** The network input an image is decoded to: height × width × channels, channels last. */
export interface ImageShape {
  readonly height: number;
  readonly width: number;
  readonly channels: 1 | 3;
}

const FIT: Record<ImageTransform['resize'], 'fill' | 'cover' | 'contain'> = {
  stretch: 'fill',
  cover: 'cover',
  contain: 'contain',
};

// libvips caches decoded images and operations per process; the agent decodes each file once per pass, so that cache
// would only hold memory (and make the memory bound depend on libvips' defaults).
sharp.cache(false);

/**
 * Decodes one PNG or JPEG file (sharp, libvips) to the network input: converted to grey (luminance) or RGB (alpha
 * dropped), resized to height × width as the plan says, 8-bit values v / 255 normalised per channel as
 * (v − mean) / std, row-major height, width, channel. `requireSize` refuses an image of another decoded size instead
 * of resizing it. Every failure is an ImageFileError: 'unreadable' for a file that does not decode as an image,
 * 'wrong-size' for a refused size. Memory: the decoded image and one output row (≈ 5 bytes per output value).
 */
export async function decodeImage(path: string, transform: ImageTransform, shape: ImageShape): Promise<Float32Array> {
  let raw: { data: Buffer; info: sharp.OutputInfo };
  try {
    const image = sharp(path, { failOn: 'error', limitInputPixels: 1 << 28 });
    if (transform.requireSize) {
      const meta = await image.metadata();
      const { height, width } = transform.requireSize;
      if (meta.height !== height || meta.width !== width) {
        throw new ImageFileError(
          'wrong-size',
          `the image is ${meta.width ?? '?'}×${meta.height ?? '?'}, the plan accepts only ${width}×${height}`,
        );
      }
    }
    const colour =
      transform.color === 'grayscale' ? image.removeAlpha().grayscale() : image.removeAlpha().toColorspace('srgb');
    raw = await colour
      .resize(shape.width, shape.height, { fit: FIT[transform.resize], background: { r: 0, g: 0, b: 0 } })
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    if (err instanceof ImageFileError) throw err;
    // sharp's messages describe the format problem ("Input file contains unsupported image format"), never pixels.
    throw new ImageFileError('unreadable', `the file does not decode as an image (${firstLine(err)})`);
  }
  const { data, info } = raw;
  if (info.width !== shape.width || info.height !== shape.height || info.channels !== shape.channels) {
    throw new ImageFileError(
      'unreadable',
      `decoding gave ${info.width}×${info.height}×${info.channels}, not ${shape.width}×${shape.height}×${shape.channels}`,
    );
  }
  const { mean, std } = transform.normalization;
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const c = i % shape.channels;
    out[i] = (data[i]! / 255 - mean[c]!) / std[c]!;
  }
  return out;
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!.slice(0, 200);
}
