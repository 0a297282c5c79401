// Minimal strict DER reading (ITU-T X.690 section 8.1 and 10.1) and PEM armour (RFC 7468), used to slice the exact
// signed bytes out of a structure before any higher-level parser sees it. Only what the library needs: single-byte
// tags and definite, minimally encoded lengths up to 2^32 - 1.

/** One tag-length-value element: `start` is the tag's offset, `contentStart` the first content byte, `end` exclusive. */
export interface DerElement {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

/** Thrown for any violation of DER framing; callers translate it into their own error code. */
export class DerFormatError extends Error {
  override readonly name = 'DerFormatError';
}

/** Reads the element starting at `offset`, which must end at or before `limit` (default: end of `der`). */
export function readDerElement(der: Uint8Array, offset: number, limit = der.length): DerElement {
  if (offset + 2 > limit) throw new DerFormatError(`truncated element at offset ${offset}`);
  const tag = der[offset]!;
  // High tag numbers (low five bits all set) never occur in the structures read here.
  if ((tag & 0x1f) === 0x1f) throw new DerFormatError(`multi-byte tag at offset ${offset}`);
  const first = der[offset + 1]!;
  let length: number;
  let contentStart: number;
  if (first < 0x80) {
    length = first;
    contentStart = offset + 2;
  } else {
    const count = first & 0x7f;
    // 0x80 is BER's indefinite length, forbidden in DER (X.690 section 10.1); more than 4 octets is never needed.
    if (count === 0 || count > 4) throw new DerFormatError(`unsupported length form at offset ${offset}`);
    if (offset + 2 + count > limit) throw new DerFormatError(`truncated length at offset ${offset}`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[offset + 2 + i]!;
    // DER demands the shortest length encoding: long form only for >= 128 and no leading zero octet.
    if (length < 0x80 || der[offset + 2] === 0) throw new DerFormatError(`non-minimal length at offset ${offset}`);
    contentStart = offset + 2 + count;
  }
  const end = contentStart + length;
  if (end > limit) throw new DerFormatError(`element at offset ${offset} overruns its container`);
  return { tag, start: offset, contentStart, end };
}

/** Reads the direct children of a constructed element. */
export function readDerChildren(der: Uint8Array, parent: DerElement): DerElement[] {
  const children: DerElement[] = [];
  let offset = parent.contentStart;
  while (offset < parent.end) {
    const child = readDerElement(der, offset, parent.end);
    children.push(child);
    offset = child.end;
  }
  return children;
}

const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes exactly one PEM block with the given label (RFC 7468 section 2, strict form: no headers, nothing but
 * whitespace outside the block). Returns null when the text is not such a block.
 */
export function decodePem(text: string, label: string): Buffer | null {
  const lines = text.trim().split(/\r?\n/);
  if (lines.length < 3) return null;
  if (lines[0] !== `-----BEGIN ${label}-----` || lines[lines.length - 1] !== `-----END ${label}-----`) return null;
  const body = lines
    .slice(1, -1)
    .map((line) => line.trim())
    .join('');
  if (body.length === 0 || body.length % 4 !== 0 || !BASE64_LINE.test(body)) return null;
  const der = Buffer.from(body, 'base64');
  // Round-trip guards against base64 that Node would decode leniently (e.g. non-zero padding bits).
  return der.toString('base64') === body ? der : null;
}

/** Encodes DER as a PEM block with 64-character lines (RFC 7468 section 2). */
export function encodePem(der: Uint8Array, label: string): string {
  const body = Buffer.from(der).toString('base64');
  const lines = body.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
