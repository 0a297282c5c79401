// What changed between two plan versions, field by field: shown to administrators in the console and to data
// stewards by their agent before they decide on the new version.

/** One changed field: its path in the plan (`training.rounds`, `silos.2`) and both values (absent: undefined). */
export interface PlanChange {
  path: string;
  kind: 'added' | 'removed' | 'changed';
  before?: unknown;
  after?: unknown;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Arrays of scalars (invited silos, hidden layers, levels) are compared whole: one change, both lists shown. */
function isScalarList(v: unknown): v is unknown[] {
  return Array.isArray(v) && v.every((x) => x === null || typeof x !== 'object');
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (isRecord(a) && isRecord(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].every((k) => same(a[k], b[k]));
  }
  return false;
}

function walk(path: string, before: unknown, after: unknown, out: PlanChange[]): void {
  if (same(before, after)) return;
  if (before === undefined) {
    out.push({ path, kind: 'added', after });
    return;
  }
  if (after === undefined) {
    out.push({ path, kind: 'removed', before });
    return;
  }
  const join = (k: string | number) => (path === '' ? String(k) : `${path}.${k}`);
  if (isRecord(before) && isRecord(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    for (const k of keys) walk(join(k), before[k], after[k], out);
    return;
  }
  if (Array.isArray(before) && Array.isArray(after) && !(isScalarList(before) && isScalarList(after))) {
    const n = Math.max(before.length, after.length);
    for (let i = 0; i < n; i++) walk(join(i), before[i], after[i], out);
    return;
  }
  out.push({ path, kind: 'changed', before, after });
}

/**
 * The fields that differ between two plans (or any two JSON values), in path order. Objects are compared key by
 * key, arrays of objects element by element, arrays of scalars as a whole; an unchanged plan gives [].
 */
export function planChanges(before: unknown, after: unknown): PlanChange[] {
  const out: PlanChange[] = [];
  walk('', before, after, out);
  return out;
}

/** A value as one short line for a change list (JSON, cut at `max` characters). */
export function planValueText(value: unknown, max = 120): string {
  if (value === undefined) return '—';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** One line per change: "training.rounds: 10 → 12", "screening: added {…}". */
export function describePlanChanges(changes: readonly PlanChange[]): string[] {
  return changes.map((c) =>
    c.kind === 'added'
      ? `${c.path}: added ${planValueText(c.after)}`
      : c.kind === 'removed'
        ? `${c.path}: removed (was ${planValueText(c.before)})`
        : `${c.path}: ${planValueText(c.before)} → ${planValueText(c.after)}`,
  );
}
