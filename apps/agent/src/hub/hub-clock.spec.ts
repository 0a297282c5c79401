import type { SiloTask } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { buildPlan, buildStudy, buildTask } from '../testing/study.test-util';
import {
  CLOCK_SKEW_WARNING_MS,
  formatSkew,
  HubClock,
  localDeadlineMs,
  skewFromDateHeader,
  skewFromTask,
} from './hub-clock';

const HOUR = 3_600_000;
/** The hub's (true) time of the scenarios: a fixed instant, so every figure below is exact. */
const HUB_NOW = Date.parse('2025-03-01T12:00:00.000Z');

/** A task as the hub answers at HUB_NOW with `leftMs` to its deadline. */
function taskFromHub(leftMs: number): SiloTask {
  return buildTask(buildStudy(buildPlan()), 'a'.repeat(64), {
    deadlineAt: new Date(HUB_NOW + leftMs).toISOString(),
    deadlineInMs: leftMs,
  });
}

const skews = [
  { label: '90 s ahead', skewMs: 90_000 },
  { label: '3 h ahead', skewMs: 3 * HOUR },
  { label: '90 s behind', skewMs: -90_000 },
  { label: '3 h behind', skewMs: -3 * HOUR },
];

describe('localDeadlineMs', () => {
  it.each(skews)('puts the deadline exactly the time left after receipt when this host runs $label', ({ skewMs }) => {
    const task = taskFromHub(120_000);
    // Received 250 ms after the hub answered, read on this host's skewed clock.
    const receivedAt = HUB_NOW + 250 + skewMs;
    const deadline = localDeadlineMs(task, receivedAt);
    expect(deadline - receivedAt).toBe(120_000);
    // On this host's clock the deadline is the hub's deadline shifted by the skew (and the 250 ms in transit) …
    expect(deadline - Date.parse(task.deadlineAt)).toBe(skewMs + 250);
    // … so "past the deadline" by this host's clock means past it by the hub's: 1 s before, still open; 1 s after, past.
    const hostNowAt = (hubMs: number) => hubMs + 250 + skewMs;
    expect(hostNowAt(HUB_NOW + 119_000) < deadline).toBe(true);
    expect(hostNowAt(HUB_NOW + 121_000) >= deadline).toBe(true);
  });

  it('is the receipt time itself once the hub says nothing is left', () => {
    expect(localDeadlineMs(taskFromHub(0), HUB_NOW + 5)).toBe(HUB_NOW + 5);
  });
});

describe('skew estimates', () => {
  it.each(skews)("reads $label from a task (deadlineAt − deadlineInMs is the hub's time)", ({ skewMs }) => {
    expect(skewFromTask(taskFromHub(10 * 60_000), HUB_NOW + skewMs)).toBe(skewMs);
  });

  it('reads nothing from a task whose deadline had passed at the hub', () => {
    expect(skewFromTask(taskFromHub(0), HUB_NOW + 3 * HOUR)).toBeNull();
  });

  it.each(skews)('reads $label from a Date header to within half a second', ({ skewMs }) => {
    const header = new Date(HUB_NOW).toUTCString();
    // The header is truncated to the second: the hub's time was somewhere in [HUB_NOW, HUB_NOW + 1 s).
    const estimate = skewFromDateHeader(header, HUB_NOW + 300 + skewMs)!;
    expect(Math.abs(estimate - skewMs)).toBeLessThanOrEqual(500);
  });

  it('reads nothing from a missing or unreadable Date header', () => {
    expect(skewFromDateHeader(undefined, HUB_NOW)).toBeNull();
    expect(skewFromDateHeader('yesterday-ish', HUB_NOW)).toBeNull();
  });

  it('says a skew in seconds, or hours and minutes', () => {
    expect(formatSkew(90_000)).toBe('90 s');
    expect(formatSkew(-3 * HOUR)).toBe('3 h 0 min (10800 s)');
    expect(formatSkew(HOUR + 90_000)).toBe('1 h 2 min (3690 s)');
  });
});

describe('HubClock', () => {
  function watched() {
    const said: string[] = [];
    return { clock: new HubClock((m) => said.push(m)), said };
  }

  it('warns once, naming the direction and size, when this host runs 3 h ahead', () => {
    const { clock, said } = watched();
    clock.observeTask(taskFromHub(HOUR), HUB_NOW + 3 * HOUR);
    clock.observeDateHeader(new Date(HUB_NOW).toUTCString(), HUB_NOW + 3 * HOUR);
    clock.observeTask(taskFromHub(HOUR), HUB_NOW + 3 * HOUR + 10);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/^WARNING: this host's clock is 3 h 0 min \(10800 s\) ahead of the hub's; /);
    expect(said[0]).toContain("deadlines are judged by the hub's clock");
    expect(clock.skewMs).toBe(3 * HOUR + 10);
  });

  it('warns of a host 90 s behind from the Date header alone', () => {
    const { clock, said } = watched();
    clock.observeDateHeader(new Date(HUB_NOW).toUTCString(), HUB_NOW - 90_000);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/^WARNING: this host's clock is 91 s behind the hub's; /);
  });

  it("keeps quiet within the threshold, and counts a Date header's rounding in the host's favour", () => {
    const { clock, said } = watched();
    clock.observeTask(taskFromHub(HOUR), HUB_NOW + CLOCK_SKEW_WARNING_MS);
    clock.observeTask(taskFromHub(HOUR), HUB_NOW - CLOCK_SKEW_WARNING_MS);
    // 30.4 s by the header's mid-second estimate, within its ±0.5 s rounding of the threshold.
    clock.observeDateHeader(new Date(HUB_NOW).toUTCString(), HUB_NOW + 500 + CLOCK_SKEW_WARNING_MS + 400);
    clock.observeDateHeader(undefined, HUB_NOW + 5 * HOUR);
    expect(said).toEqual([]);
    clock.observeTask(taskFromHub(HOUR), HUB_NOW + CLOCK_SKEW_WARNING_MS + 1);
    expect(said).toHaveLength(1);
  });
});
