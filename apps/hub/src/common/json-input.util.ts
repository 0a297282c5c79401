/**
 * Edge checks on every parsed JSON body and query string, before any guard, pipe or handler sees them (issue 14,
 * findings 8 and 10). Each refused shape once reached PostgreSQL or a recursive library and answered 500:
 * - nesting deeper than MAX_JSON_DEPTH: JSON.parse takes it, but recursive code after it (class-transformer, the
 *   logger's serializer) overflows the stack;
 * - NUL (U+0000) in a string or a key: PostgreSQL `text` cannot hold it ("invalid byte sequence");
 * - numbers beyond ±MAX_SAFE_INTEGER (or beyond float64, which JSON.parse turns into Infinity): not represented
 *   exactly, so what is validated differs from what was sent, and they overflow integer columns;
 * - the keys `__proto__`, `constructor` and `prototype` anywhere: copying them can change an object's prototype,
 *   and a plan holding them is validated and priced differently from how it is stored and hashed.
 */

/** Deepest nesting of arrays and objects accepted (levels; the deepest real body, a study plan, has about 6). */
export const MAX_JSON_DEPTH = 64;
/** Keys refused anywhere in a body or a query string. */
export const PROTOTYPE_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];
/** At most this many problems are listed: a hostile body could hold millions. */
const MAX_PROBLEMS = 10;

function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function valueProblem(value: unknown, path: string): string | null {
  if (typeof value === 'string' && value.includes('\u0000')) {
    return `${path} contains a NUL character (U+0000), which the hub does not accept in text`;
  }
  if (typeof value === 'number' && !(Math.abs(value) <= Number.MAX_SAFE_INTEGER)) {
    return `${path} is a number beyond ±${Number.MAX_SAFE_INTEGER} (2^53 − 1), which cannot be represented exactly`;
  }
  return null;
}

/**
 * Every problem of a parsed JSON value (or query object), each naming its path from `root`; empty when it is
 * acceptable. Iterative (an explicit stack), so a deep value cannot overflow the checker's own stack either.
 */
export function jsonInputProblems(value: unknown, root: string): string[] {
  const problems: string[] = [];
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: root, depth: 0 }];
  while (stack.length > 0 && problems.length < MAX_PROBLEMS) {
    const item = stack.pop()!;
    const own = valueProblem(item.value, item.path);
    if (own) problems.push(own);
    if (typeof item.value !== 'object' || item.value === null) continue;
    if (item.depth >= MAX_JSON_DEPTH) {
      problems.push(`${item.path} nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`);
      continue;
    }
    if (Array.isArray(item.value)) {
      for (let i = item.value.length - 1; i >= 0; i -= 1) {
        stack.push({ value: item.value[i] as unknown, path: childPath(item.path, i), depth: item.depth + 1 });
      }
      continue;
    }
    const keys = Object.keys(item.value);
    for (let i = keys.length - 1; i >= 0; i -= 1) {
      const key = keys[i]!;
      const path = childPath(item.path, key);
      if (PROTOTYPE_KEYS.includes(key)) {
        problems.push(`${path}: the key "${key}" is not accepted anywhere (it can alter an object's prototype)`);
        continue;
      }
      if (key.includes('\u0000')) {
        problems.push(`${item.path} has a key with a NUL character (U+0000)`);
        continue;
      }
      stack.push({ value: (item.value as Record<string, unknown>)[key], path, depth: item.depth + 1 });
    }
  }
  // Depth-first order from the stack lists problems in document order; keep the list short and stable.
  return problems.slice(0, MAX_PROBLEMS);
}
