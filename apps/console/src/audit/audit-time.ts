// The audit page's one time zone: what its table shows and what its date filters mean. Pure functions; "local" is
// the browser's own zone (the Date API's local time), so the page needs no time zone database of its own.

/** UTC, or the browser's zone. */
export type AuditZone = 'utc' | 'local';

export const AUDIT_ZONES: readonly AuditZone[] = ['utc', 'local'];

/** The browser's IANA zone name ("Europe/Zurich"), or "local time" when the browser does not say. */
export function browserZoneName(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
}

/** How the page names a zone: "UTC", or "Europe/Zurich (this browser)". */
export function zoneLabel(zone: AuditZone, localName: string = browserZoneName()): string {
  return zone === 'utc' ? 'UTC' : `${localName} (this browser)`;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function wallTimeOf(d: Date, zone: AuditZone): WallTime {
  return zone === 'utc'
    ? {
        year: d.getUTCFullYear(),
        month: d.getUTCMonth() + 1,
        day: d.getUTCDate(),
        hour: d.getUTCHours(),
        minute: d.getUTCMinutes(),
        second: d.getUTCSeconds(),
      }
    : {
        year: d.getFullYear(),
        month: d.getMonth() + 1,
        day: d.getDate(),
        hour: d.getHours(),
        minute: d.getMinutes(),
        second: d.getSeconds(),
      };
}

/** "+01:00": the offset of the browser's zone from UTC at that instant (it changes with summer time). */
function localOffset(d: Date): string {
  const minutes = -d.getTimezoneOffset();
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/**
 * "2026-11-22 09:10:05 UTC", or in the browser's zone "2026-11-22 10:10:05 +01:00" (the offset at that instant, so
 * a time in the hour that repeats when summer time ends is still unambiguous). To the second: records are ordered by
 * seq, and several fall in one minute.
 */
export function formatAuditTime(iso: string | null | undefined, zone: AuditZone): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const w = wallTimeOf(d, zone);
  const text = `${pad(w.year, 4)}-${pad(w.month)}-${pad(w.day)} ${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}`;
  return `${text} ${zone === 'utc' ? 'UTC' : localOffset(d)}`;
}

/** The value of an <input type="datetime-local" step="1"> showing this instant in the zone ("2026-11-22T10:10:05"). */
export function toWallTimeInput(iso: string, zone: AuditZone): string {
  const w = wallTimeOf(new Date(iso), zone);
  return `${pad(w.year, 4)}-${pad(w.month)}-${pad(w.day)}T${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}`;
}

const WALL_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/;

/** What a filter field holds: nothing, an instant, or why it is not one. */
export type WallTimeParse = { ok: true; instant: string | undefined } | { ok: false; message: string };

/**
 * A datetime-local value ("2026-11-22T10:10" or with seconds) read as a wall time in the zone, as the ISO instant the
 * hub wants. A wall time that does not exist in the browser's zone (skipped when summer time starts) is refused
 * rather than moved; one that occurs twice (when it ends) is taken at its first occurrence, as the Date API does.
 */
export function wallTimeToInstant(value: string, zone: AuditZone): WallTimeParse {
  const text = value.trim();
  if (text === '') return { ok: true, instant: undefined };
  const m = WALL_TIME.exec(text);
  if (!m) return { ok: false, message: `"${value}" is not a date and time (YYYY-MM-DD hh:mm:ss)` };
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map((x) => Number(x ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const d =
    zone === 'utc'
      ? new Date(Date.UTC(year, month - 1, day, hour, minute, second))
      : new Date(year, month - 1, day, hour, minute, second);
  const back = wallTimeOf(d, zone);
  if (
    Number.isNaN(d.getTime()) ||
    back.year !== year ||
    back.month !== month ||
    back.day !== day ||
    back.hour !== hour ||
    back.minute !== minute ||
    back.second !== second
  ) {
    return {
      ok: false,
      message:
        zone === 'local'
          ? `${text.replace('T', ' ')} does not exist in ${browserZoneName()} (a date that is not in the calendar, or an hour skipped when summer time starts)`
          : `${text.replace('T', ' ')} is not a date in the calendar`,
    };
  }
  return { ok: true, instant: d.toISOString() };
}
