// Display helpers: dates, durations, hashes and numbers as the console shows them. Pure functions.

/** "2026-11-22 09:10 UTC" — one unambiguous form for every timestamp (hospitals span time zones). */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** "3 min ago", "in 5 days": coarse, for status at a glance (the exact time goes in a title). */
export function formatRelative(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return 'never';
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return iso;
  const seconds = Math.round((t - now) / 1000);
  const abs = Math.abs(seconds);
  const [value, unit] =
    abs < 45
      ? [abs, 's']
      : abs < 3600
        ? [Math.round(abs / 60), 'min']
        : abs < 86_400
          ? [Math.round(abs / 3600), 'h']
          : [Math.round(abs / 86_400), abs < 2 * 86_400 ? 'day' : 'days'];
  if (abs < 5) return 'just now';
  return seconds < 0 ? `${value} ${unit} ago` : `in ${value} ${unit}`;
}

/** First 12 hex digits and an ellipsis: enough to compare by eye; the whole hash goes in a title. */
export function shortHash(hash: string | null | undefined, digits = 12): string {
  if (!hash) return '—';
  return hash.length > digits ? `${hash.slice(0, digits)}…` : hash;
}

/** A metric in [0, 1] or a loss: 3 decimals, or a dash when absent. */
export function formatMetric(value: number | null | undefined, digits = 3): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(digits);
}

/** Significant digits for privacy parameters (ε, σ): 4 by default, scientific notation for tiny values. */
export function formatSignificant(value: number, digits = 4): string {
  if (!Number.isFinite(value)) return String(value);
  if (value !== 0 && Math.abs(value) < 1e-3) return value.toExponential(digits - 1);
  return Number(value.toPrecision(digits)).toString();
}

/** Words for the study lifecycle states. */
export const STUDY_STATUS_LABEL: Record<string, string> = {
  draft: 'Draft',
  awaiting_approvals: 'Awaiting approvals',
  running: 'Running',
  completed: 'Completed',
  stopped: 'Stopped',
  failed: 'Failed',
};
