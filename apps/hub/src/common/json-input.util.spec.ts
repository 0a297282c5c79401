import { describe, expect, it } from 'vitest';
import { jsonInputProblems, MAX_JSON_DEPTH } from './json-input.util';

function nested(depth: number): unknown {
  return JSON.parse('['.repeat(depth) + ']'.repeat(depth));
}

describe('jsonInputProblems', () => {
  it('accepts an ordinary body', () => {
    expect(jsonInputProblems({ plan: { name: 'x', silos: ['a'], training: { rounds: 3, lr: 0.01 } } }, 'body')).toEqual(
      [],
    );
  });

  it('bounds nesting, without overflowing its own stack on 20,000 levels', () => {
    expect(jsonInputProblems(nested(MAX_JSON_DEPTH), 'body')).toEqual([]);
    const deep = jsonInputProblems(nested(20_000), 'body');
    expect(deep).toHaveLength(1);
    expect(deep[0]).toMatch(/nests deeper than 64 levels/);
  });

  it('refuses NUL in strings and keys, naming the path', () => {
    expect(jsonInputProblems({ username: 'ad\u0000min' }, 'body')).toEqual([
      'body.username contains a NUL character (U+0000), which the hub does not accept in text',
    ]);
    expect(jsonInputProblems({ a: [{ 'k\u0000': 1 }] }, 'body')[0]).toMatch(/^body\.a\[0\] has a key with a NUL/);
  });

  it('refuses numbers that are not exact integers of float64 or overflow it', () => {
    expect(jsonInputProblems(JSON.parse('{"n": 1e400}'), 'body')[0]).toMatch(/^body\.n is a number beyond/);
    expect(jsonInputProblems({ n: 2 ** 53 }, 'body')).toHaveLength(1);
    expect(jsonInputProblems({ n: -(2 ** 53 - 1), f: 1e-300 }, 'body')).toEqual([]);
  });

  it('refuses prototype keys anywhere, as JSON.parse makes them (own properties)', () => {
    const parsed = JSON.parse('{"plan": {"schema": {"features": [{"__proto__": {"x": 1}}]}}}') as unknown;
    expect(jsonInputProblems(parsed, 'body')).toEqual([
      'body.plan.schema.features[0].__proto__: the key "__proto__" is not accepted anywhere (it can alter an object\'s prototype)',
    ]);
    expect(jsonInputProblems({ constructor: 1, b: { prototype: 2 } }, 'body')).toHaveLength(2);
  });

  it('lists at most ten problems', () => {
    expect(jsonInputProblems(Array(1000).fill('\u0000'), 'body')).toHaveLength(10);
  });
});
