import { describe, expect, it } from 'vitest';
import {
  agentOfflineAfterSeconds,
  formatAgentHeader,
  formatAgentTaskHeader,
  parseAgentHeader,
  parseAgentTaskHeader,
  type AgentSoftware,
} from './agent-presence';

const software = (over: Partial<AgentSoftware> = {}): AgentSoftware => ({
  version: '0.1.0',
  platform: 'linux-x64',
  node: '22.11.0',
  ...over,
});

describe('the agent header', () => {
  it('round-trips what an agent says about itself', () => {
    for (const s of [software(), software({ version: '1.2.3-rc.1+build.7', platform: 'darwin-arm64' })]) {
      const value = formatAgentHeader(s);
      expect(value).toMatch(/^tessera-agent\//);
      expect(parseAgentHeader(value)).toEqual(s);
    }
  });

  it('refuses to format a part that would not parse back', () => {
    expect(() => formatAgentHeader(software({ version: '1.0 (evil)' }))).toThrow(/not a valid x-tessera-agent/);
    expect(() => formatAgentHeader(software({ platform: 'Linux x64' }))).toThrow();
    expect(() => formatAgentHeader(software({ version: 'v'.repeat(41) }))).toThrow();
  });

  it('reads nothing from a value not in the format, rather than guess', () => {
    for (const v of [
      undefined,
      '',
      'curl/8.0',
      'tessera-agent/0.1.0',
      'tessera-agent/0.1.0 (linux-x64; node 22.11.0) extra',
      'tessera-agent/<script> (linux-x64; node 22)',
    ]) {
      expect(parseAgentHeader(v)).toBeNull();
    }
  });
});

describe('the agent task header', () => {
  const studyId = '0b7f6a4e-9d1c-4c55-8a61-2f1e0c9d3b11';

  it('round-trips a task', () => {
    for (const kind of ['train', 'evaluate'] as const) {
      const task = { kind, studyId, round: 12 };
      expect(parseAgentTaskHeader(formatAgentTaskHeader(task))).toEqual(task);
    }
  });

  it('reads nothing from a malformed value', () => {
    for (const v of [undefined, '', `aggregate ${studyId} 1`, `train ${studyId} -1`, `train not-a-uuid 1`, 'train']) {
      expect(parseAgentTaskHeader(v)).toBeNull();
    }
  });
});

describe('the offline window', () => {
  it("is the agent's poll wait plus a reconnect grace, capped at the hub's longest wait", () => {
    expect(agentOfflineAfterSeconds(5)).toBe(15);
    expect(agentOfflineAfterSeconds(20)).toBe(30);
    expect(agentOfflineAfterSeconds(300)).toBe(40);
    for (const unknown of [null, 0, -3, 2.5, Number.NaN]) expect(agentOfflineAfterSeconds(unknown)).toBe(40);
  });
});
