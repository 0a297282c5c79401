import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';
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

type LoggedRequest = IncomingMessage & { id?: string; originalUrl?: string };

/**
 * What a request log line says of the request: id, method, path, peer and the allow-listed headers. Built from the
 * raw request in one pass: pino-http's standard serializer copies every header, which the redaction then clones
 * again, about a fifth of a console read's CPU time on the hub (docs/benchmarks.md, console reads).
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

export function loggerParams(config: HubConfig): Params {
  return {
    pinoHttp: {
      level: config.logLevel,
      genReqId: (req, res) => (req as IncomingMessage & { id?: string }).id ?? correlationIdFor(req, res),
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      // Raw request and response in: the serializers below read only what they log.
      wrapSerializers: false,
      serializers: { req: requestForLog, res: responseForLog },
      // 503 is "try again" (database or blob store unavailable), which the client retries: warn, not error.
      customLogLevel: (_req, res, err) =>
        res.statusCode === 503
          ? 'warn'
          : err || res.statusCode >= 500
            ? 'error'
            : res.statusCode >= 400
              ? 'warn'
              : 'info',
      // Health probes every few seconds would drown the log.
      autoLogging: { ignore: (req) => QUIET_PATHS.includes(req.url ?? '') },
      quietReqLogger: true,
    },
  };
}
