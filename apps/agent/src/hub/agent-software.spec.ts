import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AGENT_HEADER, AGENT_TASK_HEADER, parseAgentHeader, parseAgentTaskHeader } from '@tessera/protocol';
import agentPackage from '../../package.json';
import { agentHeaders, agentRelease, setCurrentTask } from './agent-software';

describe("the agent's software and task headers", () => {
  afterEach(() => setCurrentTask(null));

  it("names this agent's release, platform and Node.js on every call", () => {
    const software = parseAgentHeader(agentHeaders()[AGENT_HEADER]);
    expect(software).toEqual({
      version: agentPackage.version,
      platform: `${process.platform}-${process.arch}`,
      node: process.versions.node,
    });
    expect(agentHeaders()[AGENT_TASK_HEADER]).toBeUndefined();
  });

  it('names the current task while there is one, and none after', () => {
    const task = { kind: 'train' as const, studyId: '4c0e8a52-7f3b-4d8e-9a51-0c6f2b7d9e13', round: 3 };
    setCurrentTask(task);
    expect(parseAgentTaskHeader(agentHeaders()[AGENT_TASK_HEADER])).toEqual(task);
    setCurrentTask(null);
    expect(AGENT_TASK_HEADER in agentHeaders()).toBe(false);
  });

  describe('the release', () => {
    const dirs: string[] = [];
    afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

    it("is the agent package's version found above the code, skipping other packages", () => {
      const root = mkdtempSync(join(tmpdir(), 'agent-release-'));
      dirs.push(root);
      writeFileSync(join(root, 'package.json'), JSON.stringify({ name: '@tessera/agent', version: '9.8.7' }));
      mkdirSync(join(root, 'dist', 'hub'), { recursive: true });
      writeFileSync(join(root, 'dist', 'package.json'), JSON.stringify({ name: 'other', version: '1.0.0' }));
      expect(agentRelease(join(root, 'dist', 'hub'))).toBe('9.8.7');
    });

    it('is "unknown" when no agent package is found', () => {
      const root = mkdtempSync(join(tmpdir(), 'agent-release-'));
      dirs.push(root);
      // Walks up to the file system's root; a temporary folder has no @tessera/agent package above it.
      expect(agentRelease(root)).toBe('unknown');
    });
  });
});
