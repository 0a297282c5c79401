import type { Request, Response } from 'express';

/** An open server-sent events response (https://html.spec.whatwg.org/multipage/server-sent-events.html). */
export interface EventStream {
  /** Sends one message whose data is `data` (a single line: JSON never contains raw newlines). */
  send(data: string): void;
  /** Ends the response. */
  end(): void;
  /** Runs `listener` once when the stream closes, whoever closed it. */
  onClose(listener: () => void): void;
}

export interface EventStreamOptions {
  /** A comment line is written this often to keep the connection alive (ms). */
  heartbeatMs: number;
  /** The stream ends at this instant (the session's expiry); the client reconnects with a fresh token. */
  endAt?: Date;
}

/** Turns an Express response into an event stream and ends it when the client disconnects. */
export function openEventStream(req: Request, res: Response, options: EventStreamOptions): EventStream {
  res.status(200);
  res.setHeader('content-type', 'text/event-stream; charset=utf-8');
  res.setHeader('cache-control', 'no-cache, no-transform');
  res.setHeader('connection', 'keep-alive');
  // nginx and similar proxies buffer responses unless told not to.
  res.setHeader('x-accel-buffering', 'no');
  res.flushHeaders();
  // Ask the browser to wait a little before reconnecting (only EventSource reads this; harmless otherwise).
  res.write('retry: 2000\n\n');

  const listeners: (() => void)[] = [];
  let closed = false;
  const heartbeat = setInterval(() => {
    if (!closed) res.write(': heartbeat\n\n');
  }, options.heartbeatMs);
  heartbeat.unref();
  const remaining = options.endAt ? options.endAt.getTime() - Date.now() : undefined;
  const expiry =
    remaining === undefined ? undefined : setTimeout(() => close(), Math.max(0, Math.min(remaining, 2 ** 31 - 1)));
  expiry?.unref();

  function close(): void {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    if (expiry) clearTimeout(expiry);
    if (!res.writableEnded) res.end();
    for (const l of listeners.splice(0)) l();
  }

  req.on('close', close);
  res.on('close', close);
  return {
    send(data: string) {
      if (closed) return;
      res.write(`data: ${data.replace(/\n/g, '\ndata: ')}\n\n`);
    },
    end: close,
    onClose(listener: () => void) {
      if (closed) listener();
      else listeners.push(listener);
    },
  };
}
