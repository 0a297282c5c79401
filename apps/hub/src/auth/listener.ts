import type { Request } from 'express';

/** Which of the hub's two listeners a request arrived on. */
export type Listener = 'people' | 'silo' | 'enroll';

const LISTENER = Symbol('tessera.listener');

export function markListener(req: Request, listener: Listener): void {
  (req as unknown as Record<symbol, Listener>)[LISTENER] = listener;
}

export function isListenerMarked(req: Request): boolean {
  return (req as unknown as Record<symbol, Listener | undefined>)[LISTENER] !== undefined;
}

export function listenerOf(req: Request): Listener {
  return (req as unknown as Record<symbol, Listener | undefined>)[LISTENER] ?? 'people';
}
