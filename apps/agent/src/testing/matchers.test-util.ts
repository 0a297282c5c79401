import { expect } from 'vitest';

/*
 * vitest types its asymmetric matchers (`expect.stringContaining`, `expect.objectContaining`, …) as `any`, so an
 * expected object holding one is `any` all the way down and the type-aware lint cannot check it. These give each
 * matcher the type of the value it stands for.
 */

/** Matches a string containing `text`. */
export function textContaining(text: string): string {
  return expect.stringContaining(text) as string;
}

/** Matches any number. */
export function anyNumber(): number {
  return expect.any(Number) as number;
}

/** Matches an object (an error, a report) that has at least these fields. */
export function objectWith<T extends object>(fields: T): T {
  return expect.objectContaining<unknown>(fields) as T;
}

/** Matches a thrown error that has at least these fields (for `toThrow`). */
export function errorWith(fields: Record<string, unknown>): Error {
  return expect.objectContaining(fields) as Error;
}
