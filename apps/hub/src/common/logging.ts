import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';
import pino, { type DestinationStream, type Level, type Logger } from 'pino';
import type { HubConfig } from '../config/config.schema';

/** Paths pino blanks out wherever they appear in a log line: credentials, tokens and keys. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.password',
  '*.passphrase',
  '*.token',
  '*.accessToken',
  '*.privateKey',
  '*.privateKeyPem',
  '*.secret',
  '*.jwtSecret',
  '*.databaseUrl',
  '*.DATABASE_URL',
];

/**
 * Request headers a log line keeps (an allow-list: a header not named here, such as `authorization` or `cookie`, is
 * never written, whatever new credential header a client or proxy invents).
 */
const LOGGED_HEADERS = ['user-agent', 'x-tessera-agent', 'x-tessera-agent-task', 'content-length', 'content-type'];

type LoggedRequest = IncomingMessage & { id?: string; originalUrl?: string; log?: Logger };

/**
 * What a request log line says of the request: id, method, path, peer and the allow-listed headers. Built from the
 * raw request in one pass, once the answer is sent (docs/benchmarks.md, console reads).
 */
export function requestForLog(req: LoggedRequest): Record<string, unknown> {
  const headers: Record<string, string> = {};
  for (const name of LOGGED_HEADERS) {
    const value = req.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  return {
    id: req.id,
    method: req.method,
    url: req.originalUrl ?? req.url,
    remoteAddress: req.socket?.remoteAddress,
    headers,
  };
}

/** The answer's status only (its headers may carry a session cookie). */
export function responseForLog(res: ServerResponse): Record<string, unknown> {
  return { statusCode: res.statusCode };
}

/** Probed every few seconds by load balancers, orchestrators and Prometheus: not logged per request. */
const QUIET_PATHS = ['/health', '/health/live', '/health/ready', '/metrics'];

const SAFE_ID = /^[A-Za-z0-9._-]{8,64}$/;

/** A caller-supplied correlation id is kept when it is harmless; otherwise a new one is made. */
export function correlationIdFor(req: IncomingMessage, res: ServerResponse): string {
  const given = req.headers['x-correlation-id'];
  const id = typeof given === 'string' && SAFE_ID.test(given) ? given : randomUUID();
  res.setHeader('x-correlation-id', id);
  return id;
}

/**
 * The hub's root logger, made once per hub (hub.ts) and shared by Nest's logger, the services' loggers and the request
 * lines. The default destination writes to stdout asynchronously: a slow reader of stdout (a full pipe, a stalled log
 * shipper) then holds lines in memory instead of stopping the event loop. The hub writes them out when it stops
 * (`flushSync` in hub.ts, and pino's own exit hook when the process exits); a SIGKILL or a crash of the process
 * loses what was still buffered (docs/operations.md).
 */
export function hubLogger(
  config: HubConfig,
  destination: DestinationStream = pino.destination({ dest: 1, sync: false }),
): Logger {
  return pino({ level: config.logLevel, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, destination);
}

/**
 * nestjs-pino on an existing root: Nest's logger and `@InjectPinoLogger` write through `root` (within a request,
 * through that request's child, which `requestLogging` makes), and nestjs-pino adds no pino-http of its own.
 */
export function loggerParams(root: Logger): Params {
  return { pinoHttp: { logger: root }, useExisting: true };
}

/** 503 is "try again" (database or blob store unavailable), which the client retries: warn, not error. */
export function requestLogLevel(statusCode: number, failed: boolean): Level {
  if (statusCode === 503) return 'warn';
  if (failed || statusCode >= 500) return 'error';
  return statusCode >= 400 ? 'warn' : 'info';
}

/**
 * Express middleware, installed after the one that gives each request its id: gives the request a child of `root`
 * carrying `reqId` (which every line logged while serving it carries), and writes one line when the answer is sent
 * ('request completed'), fails (status 500 or more, or an error on the response: 'request errored') or the client
 * goes first ('request aborted'), with the request, the status and the time taken in ms. Health probes and metrics
 * scrapes are not logged. One child and one line per request: pino-http made two children (one for the request,
 * one for the answer) and serialised the request on arrival, about 0.3 ms of a console read's main-thread time.
 */
export function requestLogging(root: Logger): (req: IncomingMessage, res: ServerResponse, next: () => void) => void {
  return (req, res, next) => {
    const logged = req as LoggedRequest;
    const log = root.child({ reqId: logged.id });
    logged.log = log;
    if (QUIET_PATHS.includes(req.url ?? '')) return next();
    const startedAt = Date.now();
    let written = false;
    const write = (err: Error | undefined) => {
      if (written) return;
      written = true;
      const failed = err !== undefined;
      const msg =
        failed || res.statusCode >= 500
          ? 'request errored'
          : res.writableFinished
            ? 'request completed'
            : 'request aborted';
      const line = {
        req: requestForLog(logged),
        res: responseForLog(res),
        responseTime: Date.now() - startedAt,
        ...(err ? { err } : {}),
      };
      log[requestLogLevel(res.statusCode, failed)](line, msg);
    };
    res.once('finish', () => write(undefined));
    res.once('close', () => write(undefined));
    res.once('error', (err: Error) => write(err));
    next();
  };
}
