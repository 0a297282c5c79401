import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json';
import { nativeSha256Hex, portableSha256Hex, sha256Hex } from './sha256';

// FIPS 180-2 Appendix B.1 ("abc") and B.2 (the 448-bit two-block message), and the well-known empty-string digest
// (https://csrc.nist.gov/csrc/media/publications/fips/180/2/archive/2002-08-01/documents/fips180-2.pdf).
const FIPS_EXAMPLES: [string, string][] = [
  ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  [
    'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  ],
  ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
];

const implementations: [string, (data: string | Uint8Array) => string][] = [
  ['sha256Hex', sha256Hex],
  ['the portable (browser) implementation', portableSha256Hex],
  ['the native (Node) implementation', (data) => nativeSha256Hex(process.getBuiltinModule('node:crypto'), data)],
];

describe.each(implementations)('%s', (_name, hash) => {
  it.each(FIPS_EXAMPLES)('hashes %j as in FIPS 180-2', (message, digest) => {
    expect(hash(message)).toBe(digest);
    expect(hash(new TextEncoder().encode(message))).toBe(digest);
  });

  // FIPS 180-2 Appendix B.3: one million repetitions of "a" (many blocks, a length beyond 2^20 bits).
  it('hashes a million "a" as in FIPS 180-2 B.3', () => {
    expect(hash('a'.repeat(1_000_000))).toBe('cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
  });

  it('hashes strings as UTF-8', () => {
    expect(hash('é€😀')).toBe(createHash('sha256').update(Buffer.from('é€😀', 'utf8')).digest('hex'));
  });
});

describe('the portable and the native SHA-256', () => {
  it('agree on every input (property), strings and bytes alike', () => {
    const node = process.getBuiltinModule('node:crypto');
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'grapheme' }), fc.uint8Array({ maxLength: 300 })), (data) => {
        expect(portableSha256Hex(data)).toBe(nativeSha256Hex(node, data));
      }),
      { numRuns: 300 },
    );
  });

  it('hash only the bytes of a view, not the whole buffer behind it', () => {
    const whole = new TextEncoder().encode('xxabcxx');
    const view = whole.subarray(2, 5);
    expect(portableSha256Hex(view)).toBe(FIPS_EXAMPLES[0]![1]);
    expect(sha256Hex(view)).toBe(FIPS_EXAMPLES[0]![1]);
  });
});

describe('hashes pinned before canonical JSON and SHA-256 moved out of @tessera/audit', () => {
  // Computed by @tessera/audit's canonicalJson and node:crypto SHA-256 before the move: they must never change.
  it('keeps the digest of a canonical JSON text', () => {
    const value = { b: [1, 2.5, 'é€😀'], a: null, c: { z: true, y: 1e21 } };
    expect(canonicalJson(value)).toBe('{"a":null,"b":[1,2.5,"é€😀"],"c":{"y":1e+21,"z":true}}');
    expect(sha256Hex(canonicalJson(value))).toBe('2f996bdf34db64906e2ea1fc0d1a8575b97dfa319b639c515920fd0fcee603cf');
    expect(portableSha256Hex(canonicalJson(value))).toBe(
      '2f996bdf34db64906e2ea1fc0d1a8575b97dfa319b639c515920fd0fcee603cf',
    );
  });
});
