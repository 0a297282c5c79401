import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  AGENT_HEADER,
  AGENT_TASK_HEADER,
  formatAgentHeader,
  formatAgentTaskHeader,
  type AgentSoftware,
  type AgentTask,
} from '@tessera/protocol';

/**
 * The agent's release from its own package.json, found by walking up from this file (dist/hub/ in a build and in the
 * image, src/hub/ under tests). "unknown" when none is found, which the hub shows as is rather than guess.
 */
export function agentRelease(from: string = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === '@tessera/agent' && typeof pkg.version === 'string') return pkg.version;
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}

/** This process's software, as the x-tessera-agent header tells the hub. */
export function thisAgentSoftware(): AgentSoftware {
  return {
    version: agentRelease(),
    platform: `${process.platform}-${process.arch}`.toLowerCase(),
    node: process.versions.node,
  };
}

let softwareHeader: string | undefined;
let currentTask: AgentTask | null = null;

/**
 * Says which task this agent is carrying out, on every call from now on (x-tessera-agent-task), or that it carries
 * out none (null). The daemon sets it around each task.
 */
export function setCurrentTask(task: AgentTask | null): void {
  currentTask = task;
}

/** The headers every call to the hub carries: the agent's software, and its current task when it has one. */
export function agentHeaders(): Record<string, string> {
  softwareHeader ??= formatAgentHeader(thisAgentSoftware());
  return {
    [AGENT_HEADER]: softwareHeader,
    ...(currentTask === null ? {} : { [AGENT_TASK_HEADER]: formatAgentTaskHeader(currentTask) }),
  };
}
