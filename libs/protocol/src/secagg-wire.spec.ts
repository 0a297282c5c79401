import { describe, expect, it } from 'vitest';
import {
  decodeMaskedInputFrame,
  encodeMaskedInputFrame,
  MAX_MASKED_INPUT_HEADER_BYTES,
  SECAGG_API,
  SecAggAdvertisementsView,
} from './secagg-wire';

describe('secure-aggregation wire', () => {
  it('round-trips a masked-input frame: header JSON and the packed vector bytes as they were', () => {
    const header = { participantId: 'a', configHash: 'f'.repeat(64), maskPartners: ['b', 'c'] };
    const packed = Uint8Array.from({ length: 37 }, (_, i) => (i * 53) % 256);
    const decoded = decodeMaskedInputFrame(encodeMaskedInputFrame(header, packed));
    expect(decoded.header).toEqual(header);
    expect([...decoded.packedVector]).toEqual([...packed]);
  });

  it('refuses frames with another magic, a header longer than allowed or than the frame, or a header that is not JSON', () => {
    const good = encodeMaskedInputFrame({ a: 1 }, new Uint8Array(4));
    const wrongMagic = good.slice();
    wrongMagic[3] = 0x55;
    expect(() => decodeMaskedInputFrame(wrongMagic)).toThrow(/starts with 'TSM1'/);
    const tooLong = good.slice();
    new DataView(tooLong.buffer).setUint32(4, MAX_MASKED_INPUT_HEADER_BYTES + 1, true);
    expect(() => decodeMaskedInputFrame(tooLong)).toThrow(/declares/);
    const beyond = good.slice();
    new DataView(beyond.buffer).setUint32(4, 1000, true);
    expect(() => decodeMaskedInputFrame(beyond)).toThrow(/declares 1000 bytes/);
    const notJson = good.slice();
    notJson[8] = 0x7b + 1;
    expect(() => decodeMaskedInputFrame(notJson)).toThrow(/not UTF-8 JSON/);
    expect(() => decodeMaskedInputFrame(new Uint8Array(3))).toThrow(/starts with/);
  });

  it('names each stage route under the round, and parses a not-ready answer', () => {
    expect(SECAGG_API.maskedInput('s', 3)).toBe('/silo/v1/studies/s/rounds/3/secagg/input');
    expect(
      SecAggAdvertisementsView.parse({ ready: false, stage: 'advertise', until: '2026-12-06T10:00:00.000Z' }),
    ).toMatchObject({ ready: false });
    expect(SecAggAdvertisementsView.safeParse({ ready: true, advertisements: [] }).success).toBe(false);
  });
});
