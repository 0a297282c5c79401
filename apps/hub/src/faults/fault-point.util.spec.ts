import { describe, expect, it } from 'vitest';
import { assertFaultInjectionAllowed, FAULT_POINTS, parseFaultPoint } from './fault-point.util';

describe('test-only fault points', () => {
  it('reads a point and an optional hit count', () => {
    expect(parseFaultPoint(undefined)).toBeNull();
    expect(parseFaultPoint('')).toBeNull();
    expect(parseFaultPoint('after-accept-commit')).toEqual({ point: 'after-accept-commit', hit: 1 });
    expect(parseFaultPoint('before-close-commit@3')).toEqual({ point: 'before-close-commit', hit: 3 });
    for (const p of FAULT_POINTS) expect(parseFaultPoint(p)?.point).toBe(p);
  });

  it('names the known points when the value names none', () => {
    expect(() => parseFaultPoint('after-commit')).toThrow(/names no fault point; known points: before-accept-commit/);
    expect(() => parseFaultPoint('after-accept-commit@0')).toThrow(/names no fault point/);
    expect(() => parseFaultPoint('after-accept-commit@x')).toThrow(/names no fault point/);
  });

  it('refuses to boot a production hub with a fault point, and allows it elsewhere', () => {
    expect(() =>
      assertFaultInjectionAllowed({ NODE_ENV: 'production', TESSERA_FAULT_POINT: 'after-accept-commit' }),
    ).toThrow(/test-only crash switch and is refused when NODE_ENV=production/);
    expect(() => assertFaultInjectionAllowed({ NODE_ENV: 'production' })).not.toThrow();
    expect(() => assertFaultInjectionAllowed({ TESSERA_FAULT_POINT: 'after-accept-commit' })).not.toThrow();
    expect(() => assertFaultInjectionAllowed({ TESSERA_FAULT_POINT: 'nonsense' })).toThrow(/names no fault point/);
  });
});
