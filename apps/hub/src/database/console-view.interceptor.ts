import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import type { Request } from 'express';
import { Observable } from 'rxjs';
import { listenerOf } from '../auth/listener';
import { ReadCache } from './read-cache';

/** How late other people's and agents' changes may show in a console view (the console polls every 5–15 s). */
export const CONSOLE_VIEW_STALENESS_MS = 1_000;

/** Users the hub remembers the last write of; beyond this the oldest is forgotten (its reads then wait for data). */
const MAX_WRITERS = 10_000;

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Console reads on the embedded database: a person's GET on the people listener runs as a ConsoleView, so the views
 * it reads (studies, rounds, silos, audit pages) may be served up to CONSOLE_VIEW_STALENESS_MS old while agents and
 * other people write, but always include that person's own writes. A person's mutating request, once its handler
 * has committed, records the generation it left; their next reads need results computed from then on.
 *
 * Only views: the session check (in the guard, before any interceptor), the silo identity check and the agents'
 * task reads are outside any ConsoleView and stay exact. Off on a server database (ReadCache is off there).
 */
@Injectable()
export class ConsoleViewInterceptor implements NestInterceptor {
  private readonly lastWrite = new Map<string, number>();

  constructor(private readonly cache: ReadCache) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (!this.cache.enabled || context.getType() !== 'http') return next.handle();
    const req = context.switchToHttp().getRequest<Request & { user?: { id?: unknown } }>();
    const userId = typeof req.user?.id === 'string' ? req.user.id : null;
    if (userId === null || listenerOf(req) !== 'people') return next.handle();
    if (MUTATING.has(req.method)) {
      // Recorded when the handler settles (after its commit), before the answer is sent, and also on a refusal:
      // a refused request may still have written (its audit record).
      return new Observable((subscriber) => {
        const record = () => this.noteWrite(userId);
        const inner = next.handle().subscribe({
          next: (v) => {
            record();
            subscriber.next(v);
          },
          error: (e: unknown) => {
            record();
            subscriber.error(e);
          },
          complete: () => {
            record();
            subscriber.complete();
          },
        });
        return () => inner.unsubscribe();
      });
    }
    if (req.method !== 'GET') return next.handle();
    const view = {
      minGeneration: this.lastWrite.get(userId) ?? 0,
      stalenessMs: CONSOLE_VIEW_STALENESS_MS,
    };
    return new Observable((subscriber) =>
      this.cache.asView(view, () => {
        const inner = next.handle().subscribe(subscriber);
        return () => inner.unsubscribe();
      }),
    );
  }

  private noteWrite(userId: string): void {
    this.lastWrite.delete(userId);
    this.lastWrite.set(userId, this.cache.currentGeneration);
    if (this.lastWrite.size > MAX_WRITERS) this.lastWrite.delete(this.lastWrite.keys().next().value as string);
  }
}
