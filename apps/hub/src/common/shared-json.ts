import type { Express, Response } from 'express';

/** A value's JSON as sent, and the ETag of those bytes (none when the app generates no ETags). */
interface SerialisedJson {
  readonly bytes: Buffer;
  readonly etag: string | undefined;
}

/** Express settings that change what `res.json` writes; the kept bytes are plain `JSON.stringify` output. */
const JSON_SETTINGS = ['json replacer', 'json spaces', 'json escape'] as const;

/**
 * Serialises each shared value once. Nest answers a handler's object with `res.json`, which stringifies it, and
 * `res.send`, which hashes the bytes for the ETag: for every request, also when 200 readers get the same cached
 * view (database/read-cache.ts) between two writes. Here `res.json` of every response of `app` first asks
 * `isShared`; for a shared value it sends the bytes and ETag kept with that object (computed on its first answer),
 * and Express's `send` still decides freshness, so a matching `If-None-Match` gets 304 with no body. Any other value
 * takes Express's own path, unchanged.
 *
 * Sound only because a shared value is never changed once handed out (a write makes the cache compute a new object,
 * which gets its own bytes and ETag), and because the same object goes only to callers entitled to all of it: the
 * cache key names everything the value depends on, and access is checked before the handler runs, so a 304 is
 * never an answer to a request the guard would refuse. Kept in a WeakMap: the bytes go with the value.
 */
export function serveSharedJson(app: Express, isShared: (value: unknown) => value is object): void {
  for (const setting of JSON_SETTINGS) {
    if (app.get(setting)) throw new Error(`shared JSON writes plain JSON: Express's "${setting}" must stay unset`);
  }
  const etagOf = app.get('etag fn') as ((body: Buffer) => string) | undefined;
  const kept = new WeakMap<object, SerialisedJson>();
  const plainJson = app.response.json;
  app.response.json = function json(this: Response, body: unknown): Response {
    if (!isShared(body)) return plainJson.call(this, body);
    let serialised = kept.get(body);
    if (!serialised) {
      const bytes = Buffer.from(JSON.stringify(body), 'utf8');
      serialised = { bytes, etag: etagOf?.(bytes) };
      kept.set(body, serialised);
    }
    // What `res.json` then `res.send` of the same text would set: the type with its charset, and the weak ETag.
    if (!this.getHeader('Content-Type')) this.setHeader('Content-Type', 'application/json; charset=utf-8');
    if (serialised.etag && !this.getHeader('ETag')) this.setHeader('ETag', serialised.etag);
    return this.send(serialised.bytes);
  };
}
