import { describe, expect, it } from 'vitest';
import {
  HUB_ERROR_STATUS,
  HubErrorCode,
  hubErrorCodeForStatus,
  hubErrorCodeOf,
  hubErrorStatus,
  isHubErrorCode,
} from './hub-errors';

const codes = Object.values(HubErrorCode);

describe('the hub error contract', () => {
  it('sends each code as its own name', () => {
    for (const [name, value] of Object.entries(HubErrorCode)) expect(value).toBe(name);
  });

  it('gives every code one 4xx or 5xx status, and nothing else', () => {
    expect(Object.keys(HUB_ERROR_STATUS).sort()).toEqual([...codes].sort());
    for (const code of codes) {
      expect(hubErrorStatus(code)).toBeGreaterThanOrEqual(400);
      expect(hubErrorStatus(code)).toBeLessThan(600);
    }
  });

  it('keeps the statuses clients already rely on', () => {
    expect(hubErrorStatus(HubErrorCode.STALE_PLAN)).toBe(409);
    expect(hubErrorStatus(HubErrorCode.STUDY_STATE)).toBe(409);
    expect(hubErrorStatus(HubErrorCode.NOT_A_PARTICIPANT)).toBe(403);
    // A suspended silo is forbidden, not unauthenticated: its certificate is still good (agents wait, never re-enroll).
    expect(hubErrorStatus(HubErrorCode.SILO_SUSPENDED)).toBe(403);
    expect(hubErrorStatus(HubErrorCode.SILO_IDENTITY_REFUSED)).toBe(401);
    expect(hubErrorStatus(HubErrorCode.UPDATE_TOO_LARGE)).toBe(413);
    expect(hubErrorStatus(HubErrorCode.LOGIN_BACKOFF)).toBe(429);
    expect(hubErrorStatus(HubErrorCode.DATABASE_UNAVAILABLE)).toBe(503);
    expect(hubErrorStatus(HubErrorCode.BLOB_CORRUPTED)).toBe(500);
  });

  it('names a status of the HTTP layer by a code answered with that same status', () => {
    for (const status of [400, 401, 403, 404, 409, 413, 415, 429, 500, 503]) {
      expect(hubErrorStatus(hubErrorCodeForStatus(status))).toBe(status);
    }
    expect(hubErrorCodeForStatus(400)).toBe(HubErrorCode.BAD_REQUEST);
    expect(hubErrorCodeForStatus(413)).toBe(HubErrorCode.PAYLOAD_TOO_LARGE);
  });

  it('answers a status outside the table with the code of its class', () => {
    expect(hubErrorCodeForStatus(418)).toBe(HubErrorCode.BAD_REQUEST);
    expect(hubErrorCodeForStatus(502)).toBe(HubErrorCode.INTERNAL_SERVER_ERROR);
  });

  it('reads the code of a hub answer, and nothing from what is not one', () => {
    expect(hubErrorCodeOf({ error: 'ROUND_CLOSED', message: 'closed', correlationId: 'c' })).toBe(
      HubErrorCode.ROUND_CLOSED,
    );
    expect(hubErrorCodeOf({ error: 'SOMETHING_NEWER', message: 'm' })).toBeUndefined();
    expect(hubErrorCodeOf('<html>Bad gateway</html>')).toBeUndefined();
    expect(hubErrorCodeOf(null)).toBeUndefined();
    expect(hubErrorCodeOf({ error: 409 })).toBeUndefined();
    expect(isHubErrorCode('toString')).toBe(false);
  });
});
