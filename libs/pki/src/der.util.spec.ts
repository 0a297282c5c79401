import { describe, expect, it } from 'vitest';
import { decodePem, DerFormatError, encodePem, readDerChildren, readDerElement } from './der.util';

const hex = (value: string): Buffer => Buffer.from(value, 'hex');

describe('readDerElement', () => {
  // Length encodings from ITU-T X.690 (02/2021) section 8.1.3: short form below 128, long form otherwise.
  it('reads short and long definite lengths', () => {
    expect(readDerElement(hex('0400'), 0)).toEqual({ tag: 0x04, start: 0, contentStart: 2, end: 2 });
    const long = Buffer.concat([hex('048180'), Buffer.alloc(128)]);
    expect(readDerElement(long, 0)).toEqual({ tag: 0x04, start: 0, contentStart: 3, end: 131 });
    const longer = Buffer.concat([hex('04820100'), Buffer.alloc(256)]);
    expect(readDerElement(longer, 0).end).toBe(260);
  });

  it('refuses BER-only and inconsistent encodings (X.690 section 10.1)', () => {
    const cases = [
      hex('3080'), // indefinite length
      Buffer.concat([hex('04817f'), Buffer.alloc(127)]), // long form for a short length
      Buffer.concat([hex('0482007f'), Buffer.alloc(127)]), // leading zero length octet
      hex('0405aabb'), // overruns the buffer
      hex('1f0100'), // multi-byte tag
      hex('04'), // truncated header
    ];
    for (const der of cases) expect(() => readDerElement(der, 0)).toThrow(DerFormatError);
  });

  it('lists children and refuses a child that crosses its parent', () => {
    const seq = hex('3006020101020102');
    expect(readDerChildren(seq, readDerElement(seq, 0)).map((child) => child.start)).toEqual([2, 5]);
    const crossing = hex('3004020101020102');
    expect(() => readDerChildren(crossing, readDerElement(crossing, 0, 6))).toThrow(DerFormatError);
  });
});

describe('PEM', () => {
  it('round-trips with 64-character lines (RFC 7468 section 2)', () => {
    const der = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
    const pem = encodePem(der, 'TEST');
    expect(pem.split('\n')[1]).toHaveLength(64);
    expect(decodePem(pem, 'TEST')).toEqual(der);
    expect(decodePem(pem.replaceAll('\n', '\r\n'), 'TEST')).toEqual(der);
  });

  it('refuses wrong labels, extra blocks, bad base64 and empty bodies', () => {
    const pem = encodePem(hex('3000'), 'TEST');
    expect(decodePem(pem, 'OTHER')).toBeNull();
    expect(decodePem(pem + pem, 'TEST')).toBeNull();
    expect(decodePem('-----BEGIN TEST-----\nMA!A\n-----END TEST-----', 'TEST')).toBeNull();
    expect(decodePem('-----BEGIN TEST-----\nMAB=\n-----END TEST-----', 'TEST')).toBeNull(); // non-zero pad bits
    expect(decodePem('-----BEGIN TEST-----\n\n-----END TEST-----', 'TEST')).toBeNull();
    expect(decodePem(`junk\n${pem}`, 'TEST')).toBeNull();
  });
});
