import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IntervalTask } from './interval-task.util';

describe('IntervalTask', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs the task once per interval and never after stop()', async () => {
    const task = vi.fn(() => Promise.resolve());
    const t = new IntervalTask(300_000, task, () => undefined);
    t.start();
    expect(task).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(300_000);
    expect(task).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(600_000);
    expect(task).toHaveBeenCalledTimes(3);
    await t.stop();
    await vi.advanceTimersByTimeAsync(900_000);
    expect(task).toHaveBeenCalledTimes(3);
  });

  it('skips ticks while a run is in progress, and stop() waits for that run', async () => {
    let release: () => void = () => undefined;
    let finished = false;
    const task = vi.fn(
      () =>
        new Promise<void>((done) => {
          release = () => {
            finished = true;
            done();
          };
        }),
    );
    const t = new IntervalTask(1_000, task, () => undefined);
    t.start();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(task).toHaveBeenCalledTimes(1);
    const stopped = t.stop();
    release();
    await stopped;
    expect(finished).toBe(true);
  });

  it('reports a failed run and keeps going', async () => {
    const errors: unknown[] = [];
    const task = vi.fn().mockRejectedValueOnce(new Error('database down')).mockResolvedValue(undefined);
    const t = new IntervalTask(1_000, task, (err) => errors.push(err));
    t.start();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(errors).toEqual([new Error('database down')]);
    expect(task).toHaveBeenCalledTimes(2);
    await t.stop();
  });

  it('refuses a non-positive interval', () => {
    expect(
      () =>
        new IntervalTask(
          0,
          () => Promise.resolve(),
          () => undefined,
        ),
    ).toThrow(RangeError);
  });
});
