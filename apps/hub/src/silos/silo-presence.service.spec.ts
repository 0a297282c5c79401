import type { IncomingHttpHeaders } from 'node:http';
import { AGENT_HEADER, AGENT_TASK_HEADER, SILO_STUDY_API } from '@tessera/protocol';
import type { PinoLogger } from 'nestjs-pino';
import { describe, expect, it } from 'vitest';
import { pollWaitOf, SiloPresence, type AgentContact, type StoredPresence } from './silo-presence.service';
import type { SilosRepository } from './silos.repository';

const SILO = '5b2f3c4d-6e7f-4a8b-9c0d-1e2f3a4b5c6d';
const STUDY = '7c6b5a49-3827-4615-a4b3-c2d1e0f9a8b7';
const T0 = Date.parse('2026-12-06T10:00:00Z');
const nothingStored: StoredPresence = {
  lastSeenAt: null,
  enrollLastSeenAt: null,
  agentVersion: null,
  agentPlatform: null,
  agentNode: null,
};

/** A request whose end the test decides. */
function request(headers: IncomingHttpHeaders = {}, url?: string): AgentContact & { end(): void } {
  let done: (() => void) | undefined;
  return {
    headers,
    ...(url === undefined ? {} : { url }),
    onEnd: (cb) => (done = cb),
    end: () => done?.(),
  };
}

function presence() {
  let now = T0;
  // Only flush() touches the database and the logger; these tests do not flush.
  const p = new SiloPresence({} as SilosRepository, {} as PinoLogger, () => now);
  return { p, advance: (ms: number) => (now += ms), at: () => now };
}

describe('SiloPresence', () => {
  it('counts a long poll open until it ends, then its end is the last request seen', () => {
    const { p, advance, at } = presence();
    const poll = request({}, `${SILO_STUDY_API.tasks}?wait=20`);
    p.opened(SILO, 'silo', poll);
    advance(20_000);
    expect(p.view(SILO, nothingStored)).toMatchObject({
      openRequests: 1,
      lastSeen: { silo: new Date(T0).toISOString() },
    });
    poll.end();
    poll.end(); // 'close' after 'finish' must not count twice
    const v = p.view(SILO, nothingStored);
    expect(v.openRequests).toBe(0);
    expect(v.lastSeen.silo).toBe(new Date(at()).toISOString());
    // Its poll wait sets the window: 20 s + the reconnect grace.
    expect(v.offlineAfterSeconds).toBe(30);
  });

  it("records the agent's software and its current task, and forgets the task when a request comes without one", () => {
    const { p, advance } = presence();
    const software = { [AGENT_HEADER]: 'tessera-agent/0.2.0 (linux-arm64; node 22.11.0)' };
    p.opened(SILO, 'silo', request({ ...software, [AGENT_TASK_HEADER]: `train ${STUDY} 3` }));
    advance(30_000);
    p.opened(SILO, 'silo', request({ ...software, [AGENT_TASK_HEADER]: `train ${STUDY} 3` }));
    const v = p.view(SILO, nothingStored);
    expect(v.software).toEqual({ version: '0.2.0', platform: 'linux-arm64', node: '22.11.0' });
    // The same task keeps the time it began.
    expect(v.task).toEqual({ kind: 'train', studyId: STUDY, round: 3, since: new Date(T0).toISOString() });
    p.opened(SILO, 'silo', request(software));
    expect(p.view(SILO, nothingStored).task).toBeNull();
  });

  it('ignores a software header not in the format, keeping what it knew', () => {
    const { p } = presence();
    p.opened(SILO, 'silo', request({ [AGENT_HEADER]: 'tessera-agent/0.2.0 (linux-x64; node 22.11.0)' }));
    p.opened(SILO, 'silo', request({ [AGENT_HEADER]: '<img src=x onerror=alert(1)>' }));
    expect(p.view(SILO, nothingStored).software?.version).toBe('0.2.0');
  });

  it('keeps the enrollment listener apart, and does not count its requests as open', () => {
    const { p } = presence();
    p.opened(SILO, 'enroll', request());
    expect(p.view(SILO, nothingStored)).toMatchObject({
      openRequests: 0,
      lastSeen: { silo: null, enroll: new Date(T0).toISOString() },
    });
  });

  it('shows the later of what it saw and what the database holds (a restart, another replica)', () => {
    const { p } = presence();
    const stored: StoredPresence = {
      lastSeenAt: new Date(T0 + 60_000),
      enrollLastSeenAt: new Date(T0 - 60_000),
      agentVersion: '0.1.0',
      agentPlatform: 'linux-x64',
      agentNode: '20.0.0',
    };
    expect(p.view(SILO, stored)).toMatchObject({
      openRequests: 0,
      lastSeen: { silo: new Date(T0 + 60_000).toISOString(), enroll: new Date(T0 - 60_000).toISOString() },
      software: { version: '0.1.0', platform: 'linux-x64', node: '20.0.0' },
      offlineAfterSeconds: 40, // poll wait unknown: the longest the hub grants
      observedAt: new Date(T0).toISOString(),
    });
    p.opened(SILO, 'enroll', request());
    expect(p.view(SILO, stored).lastSeen).toEqual({
      silo: new Date(T0 + 60_000).toISOString(),
      enroll: new Date(T0).toISOString(),
    });
  });

  it("reads a long poll's wait from its URL only", () => {
    expect(pollWaitOf(`${SILO_STUDY_API.tasks}?wait=5`)).toBe(5);
    expect(pollWaitOf(SILO_STUDY_API.tasks)).toBeNull();
    expect(pollWaitOf(`${SILO_STUDY_API.tasks}?wait=abc`)).toBeNull();
    expect(pollWaitOf('/silo/v1/studies?wait=5')).toBeNull();
    expect(pollWaitOf(undefined)).toBeNull();
  });
});
