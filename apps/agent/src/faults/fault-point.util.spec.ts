import { describe, expect, it } from 'vitest';
import { AGENT_FAULT_POINTS, assertAgentFaultInjectionAllowed, parseAgentFaultPoint } from './fault-point.util';

describe("the agent's test-only fault points", () => {
  it('reads a point and an optional hit count', () => {
    expect(parseAgentFaultPoint(undefined)).toBeNull();
    expect(parseAgentFaultPoint('')).toBeNull();
    expect(parseAgentFaultPoint('secagg-advertised')).toEqual({ point: 'secagg-advertised', hit: 1 });
    expect(parseAgentFaultPoint('secagg-uploaded@2')).toEqual({ point: 'secagg-uploaded', hit: 2 });
    for (const p of AGENT_FAULT_POINTS) expect(parseAgentFaultPoint(p)?.point).toBe(p);
  });

  it('names the known points when the value names none, including the hub-only ones', () => {
    expect(() => parseAgentFaultPoint('secagg-upload-committed')).toThrow(
      /names no fault point; known points: secagg-advertised, secagg-shared, secagg-uploaded/,
    );
    expect(() => parseAgentFaultPoint('secagg-uploaded@0')).toThrow(/names no fault point/);
    expect(() => parseAgentFaultPoint('secagg-uploaded@x')).toThrow(/names no fault point/);
  });

  it('refuses a production agent with a fault point, and allows it elsewhere', () => {
    expect(() =>
      assertAgentFaultInjectionAllowed({ NODE_ENV: 'production', TESSERA_AGENT_FAULT_POINT: 'secagg-uploaded' }),
    ).toThrow(/test-only crash switch and is refused when NODE_ENV=production/);
    expect(() => assertAgentFaultInjectionAllowed({ NODE_ENV: 'production' })).not.toThrow();
    expect(() => assertAgentFaultInjectionAllowed({ TESSERA_AGENT_FAULT_POINT: 'secagg-advertised' })).not.toThrow();
    expect(() => assertAgentFaultInjectionAllowed({ TESSERA_AGENT_FAULT_POINT: 'nonsense' })).toThrow(
      /names no fault point/,
    );
  });
});
