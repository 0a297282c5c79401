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
