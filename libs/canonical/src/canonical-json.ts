import canonicalize from 'canonicalize';

/** A JSON value as RFC 8259 / I-JSON (RFC 7493) allows it: what every hashed or signed audit object is made of. */
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
/** A JSON object: string keys, JSON values. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Thrown when a value cannot be canonicalized; `path` points at the offending member (`$.details.rows[2]`). */
export class CanonicalJsonError extends Error {
  override readonly name = 'CanonicalJsonError';
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`cannot canonicalize ${path}: ${reason}`);
  }
}

// A lone UTF-16 surrogate is not a Unicode scalar value; I-JSON (RFC 7493 §2.1) forbids it and RFC 8785 §3.2.2.2
// requires an error. With the `u` flag only unpaired surrogates match \p{Cs}.
const LONE_SURROGATE = /\p{Cs}/u;

function memberPath(path: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/**
 * Walks the value and throws on anything JSON cannot carry faithfully. The canonicalize package silently drops
 * `undefined` members, turns `undefined` array items into null, calls `toJSON` (Dates) and emits the text
 * "undefined" for functions; for hashing we want an error instead, so the caller sees the mistake.
 */
function assertJson(value: unknown, path: string, ancestors: Set<object>): void {
  switch (typeof value) {
    case 'string':
      if (LONE_SURROGATE.test(value)) throw new CanonicalJsonError(path, 'string contains a lone UTF-16 surrogate');
      return;
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalJsonError(path, `${String(value)} is not a JSON number`);
      return;
    case 'undefined':
      throw new CanonicalJsonError(path, 'undefined is not a JSON value');
    case 'function':
      throw new CanonicalJsonError(path, 'a function is not a JSON value');
    case 'symbol':
      throw new CanonicalJsonError(path, 'a symbol is not a JSON value');
    case 'bigint':
      throw new CanonicalJsonError(path, 'a bigint is not a JSON number (convert it to a string or a safe integer)');
    case 'object':
      break;
  }
  if (value === null) return;
  if (ancestors.has(value)) throw new CanonicalJsonError(path, 'circular reference');
  ancestors.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) throw new CanonicalJsonError(`${path}[${i}]`, 'sparse array hole is not a JSON value');
      assertJson(value[i], `${path}[${i}]`, ancestors);
    }
  } else {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (value as { constructor?: { name?: string } }).constructor?.name ?? 'non-plain object';
      throw new CanonicalJsonError(
        path,
        `${kind} is not a plain JSON object (convert it explicitly, e.g. a Date to an ISO string)`,
      );
    }
    if (Object.getOwnPropertySymbols(value).length > 0) {
      throw new CanonicalJsonError(path, 'symbol-keyed properties are not JSON');
    }
    for (const [key, member] of Object.entries(value)) {
      if (LONE_SURROGATE.test(key))
        throw new CanonicalJsonError(path, `key ${JSON.stringify(key)} contains a lone surrogate`);
      assertJson(member, memberPath(path, key), ancestors);
    }
  }
  ancestors.delete(value);
}

/**
 * Serializes a JSON value in the JSON Canonicalization Scheme (JCS), RFC 8785: ECMAScript number and string
 * serialization (§3.2.2), members sorted by UTF-16 code units (§3.2.3), no whitespace. Throws CanonicalJsonError
 * for non-finite numbers, undefined, functions, symbols, bigints, non-plain objects, cycles and lone surrogates.
 */
export function canonicalJson(value: unknown): string {
  assertJson(value, '$', new Set());
  const text = canonicalize(value);
  // Unreachable after assertJson, but the package's type admits undefined.
  if (text === undefined) throw new CanonicalJsonError('$', 'value has no JSON representation');
  return text;
}
