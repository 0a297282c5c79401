import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, CanonicalJsonError } from './canonical-json';

describe('canonicalJson (RFC 8785)', () => {
  // RFC 8785 §3.2.2 "Serialization of Primitive Data Types", the example input and its canonical output
  // (https://www.rfc-editor.org/rfc/rfc8785#section-3.2.2; also cyberphone/json-canonicalization testdata/values.json).
  it('serializes the RFC 8785 §3.2.2 example', () => {
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
    ) as unknown;
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  // RFC 8785 §3.2.3 "Sorting of Object Properties": the example's members come out in UTF-16 code-unit order
  // (https://www.rfc-editor.org/rfc/rfc8785#section-3.2.3).
  it('sorts members as in RFC 8785 §3.2.3', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    // Escapes keep the expected text exact (an editor may normalize U+FB33 into U+05D3 U+05BC).
    expect(canonicalJson(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  // RFC 8785 Appendix B "Number Serialization Samples": IEEE 754 bit patterns and their canonical text
  // (https://www.rfc-editor.org/rfc/rfc8785#appendix-B).
  it.each([
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'],
  ])('serializes the IEEE 754 value %s as %s (RFC 8785 Appendix B)', (bits, text) => {
    const value = Buffer.from(bits, 'hex').readDoubleBE(0);
    expect(canonicalJson(value)).toBe(text);
    expect(canonicalJson([value])).toBe(`[${text}]`);
  });

  // Appendix B lists NaN (7fffffffffffffff) and Infinity (7ff0000000000000) as errors.
  it.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
  ])('rejects %s', (_label, value) => {
    expect(() => canonicalJson({ a: [value] })).toThrow(CanonicalJsonError);
    expect(() => canonicalJson({ a: [value] })).toThrow(/\$\.a\[0\]/);
  });

  it('rejects values JSON cannot carry, naming where they are', () => {
    const cases: [unknown, RegExp][] = [
      [{ a: undefined }, /\$\.a: undefined/],
      [[1, undefined], /\$\[1\]: undefined/],
      [{ f: () => 1 }, /\$\.f: a function/],
      [{ s: Symbol('x') }, /symbol/],
      [{ n: 10n }, /bigint/],
      [{ d: new Date(0) }, /Date is not a plain JSON object/],
      [{ m: new Map() }, /Map is not a plain JSON object/],
      [{ 'odd key': { x: Number.NaN } }, /\$\["odd key"\]\.x: NaN/],
      ['\ud800', /lone UTF-16 surrogate/],
      [{ ['\udc00']: 1 }, /lone surrogate/],
      // eslint-disable-next-line no-sparse-arrays
      [[1, , 3], /sparse array/],
      [undefined, /undefined/],
    ];
    for (const [value, message] of cases) expect(() => canonicalJson(value)).toThrow(message);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(/circular/);
  });

  it('accepts shared (non-cyclic) references and null-prototype objects', () => {
    const shared = { x: 1 };
    expect(canonicalJson({ b: shared, a: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
    const bare = Object.assign(Object.create(null) as Record<string, number>, { z: 1, y: 2 });
    expect(canonicalJson(bare)).toBe('{"y":2,"z":1}');
  });

  it('is idempotent and independent of member order (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
        const reversed = JSON.parse(JSON.stringify(value), (_k, v: unknown) =>
          v !== null && typeof v === 'object' && !Array.isArray(v)
            ? Object.fromEntries(Object.entries(v).reverse())
            : v,
        ) as unknown;
        expect(canonicalJson(reversed)).toBe(text);
      }),
      { numRuns: 200 },
    );
  });
});
