import { AgentError, AgentErrorCode } from '../agent.error';
import { HubUnavailableError } from '../hub/study-transport';
import { Backoff } from './backoff.util';
import type { StepLog } from './task-executor';

/** Tries a delivery this often at least, whatever the local clock says of the deadline. */
export const MIN_DELIVERY_ATTEMPTS = 6;
/** And never more often than this in one go; the daemon polls again later and the release is re-sent. */
export const MAX_DELIVERY_ATTEMPTS = 30;

export interface Delivery {
  clock: () => Date;
  sleep: (ms: number) => Promise<void>;
  log: StepLog;
}

/** What a delivery needs of its task: the round (for the log) and the hub's deadline on this host's clock (ms). */
export interface DeliveryTarget {
  round: number;
  /** localDeadlineMs (hub/hub-clock.ts): receipt time plus the time the hub said was left, never deadlineAt. */
  deadlineMs: number;
}

/**
 * Sends a release to the hub, telling "try again" from "refused". HUB_UNREACHABLE — a network failure, or the hub's
 * 503 (database outage, storage not writable) with its Retry-After — is retried with backoff: at least
 * MIN_DELIVERY_ATTEMPTS times, then while the hub's deadline (target.deadlineMs) has not passed. The caller sends
 * the same bytes every time (the hub answers a re-sent accepted update with its receipt). A refusal (HUB_REFUSED,
 * 409 and other 4xx) is final: null. Anything else, and retries given up, propagate to the daemon, which polls again
 * and re-sends the persisted release if the hub still offers the task.
 */
export async function deliver<T>(
  d: Delivery,
  target: DeliveryTarget,
  study: string,
  what: string,
  send: () => Promise<T>,
): Promise<T | null> {
  const backoff = new Backoff();
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      if (!(err instanceof AgentError)) throw err;
      if (err.code === AgentErrorCode.HUB_REFUSED) {
        d.log({ study, round: target.round, message: `${what} refused (final): ${err.message}` });
        return null;
      }
      if (err.code !== AgentErrorCode.HUB_UNREACHABLE) throw err;
      const asked = err instanceof HubUnavailableError ? err.retryAfterMs : null;
      const delay = Math.max(backoff.next(), asked ?? 0);
      const late = d.clock().getTime() + delay >= target.deadlineMs;
      if (attempt >= MAX_DELIVERY_ATTEMPTS || (attempt >= MIN_DELIVERY_ATTEMPTS && late)) throw err;
      d.log({
        study,
        round: target.round,
        message: `${what} failed (${err.message}); retrying in ${delay / 1000} s${asked !== null ? ' as the hub asked' : ''}`,
      });
      await d.sleep(delay);
    }
  }
}
