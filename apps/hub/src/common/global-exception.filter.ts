import { ArgumentsHost, Catch, HttpException, type ExceptionFilter } from '@nestjs/common';
import { hubErrorCodeForStatus, hubErrorStatus } from '@tessera/protocol';
import type { Request, Response } from 'express';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { HubErrorCode, httpStatusOf, INTERNAL_ERROR_MESSAGE } from './hub.exception';
import { RATE_LIMIT_NAME } from './rate-limit.store';
import { classifiedError } from './transient-error.util';

/** The one shape every error takes on the wire; `error` is always a code of the contract (@tessera/protocol). */
export interface ErrorBody {
  error: HubErrorCode;
  message: string;
  correlationId: string;
  details?: unknown;
}

export function correlationIdOf(req: Request): string {
  const id = (req as Request & { id?: unknown }).id;
  if (typeof id === 'string') return id;
  return typeof id === 'number' ? String(id) : 'unknown';
}

/** Body-parser's errors carry an HTTP status and a `type`; translate them into our vocabulary. */
interface HttpParserError {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
  message?: string;
}

/** The answer to an error: status, body, and for "try again" answers the Retry-After in seconds. */
export interface ErrorAnswer {
  status: number;
  body: ErrorBody;
  retryAfterSeconds?: number;
}

/** The body @nestjs/terminus throws with when a health check fails: `error` holds each failed check. */
function isHealthReport(res: unknown): res is { status: 'error'; error: Record<string, unknown> } {
  const r = res as { status?: unknown; error?: unknown } | null;
  return typeof r === 'object' && r !== null && r.status === 'error' && typeof r.error === 'object' && r.error !== null;
}

export function errorBodyFor(err: unknown, correlationId: string): ErrorAnswer {
  const classified = classifiedError(err);
  if (classified) {
    const body: ErrorBody = { error: classified.code, message: classified.message, correlationId };
    if (classified.details !== undefined) body.details = classified.details;
    const answer: ErrorAnswer = { status: httpStatusOf(classified.code), body };
    if (classified.retryAfterSeconds !== undefined) answer.retryAfterSeconds = classified.retryAfterSeconds;
    return answer;
  }
  if (err instanceof HttpException) {
    // The framework's own refusals (routing, parameter pipes, rate limits, health checks) by the contract's code
    // for their status, and with that code's status.
    const code = hubErrorCodeForStatus(err.getStatus());
    const status = hubErrorStatus(code);
    const res = err.getResponse();
    let message = err.message;
    let details: unknown;
    if (typeof res === 'object' && res !== null && 'message' in res) {
      const m = res.message;
      if (Array.isArray(m)) {
        details = m;
        message = m.join('; ');
      } else if (typeof m === 'string') {
        message = m;
      }
    } else if (isHealthReport(res)) {
      // A failed health check (terminus): say which check is down and why, for the operator and the orchestrator.
      details = res.error;
      message = `The hub is not ready: ${Object.keys(res.error).join(', ')} down.`;
    }
    const body: ErrorBody = { error: code, message, correlationId };
    if (details !== undefined) body.details = details;
    return { status, body };
  }
  const parser = err as HttpParserError;
  const parserStatus = parser?.status ?? parser?.statusCode;
  if (typeof parserStatus === 'number' && parserStatus >= 400 && parserStatus < 500 && parser.expose !== false) {
    const message =
      parser.type === 'entity.parse.failed'
        ? 'The request body is not valid JSON.'
        : parser.type === 'entity.too.large'
          ? 'The request body is larger than the hub accepts.'
          : (parser.message ?? 'Bad request.');
    const code = hubErrorCodeForStatus(parserStatus);
    return { status: hubErrorStatus(code), body: { error: code, message, correlationId } };
  }
  return {
    status: httpStatusOf(HubErrorCode.INTERNAL_SERVER_ERROR),
    body: {
      error: HubErrorCode.INTERNAL_SERVER_ERROR,
      message: INTERNAL_ERROR_MESSAGE,
      correlationId,
    },
  };
}

/** Sends an error answer, with its Retry-After header when it is a "try again". */
export function sendError(res: Response, answer: ErrorAnswer): void {
  if (answer.retryAfterSeconds !== undefined) res.setHeader('retry-after', String(answer.retryAfterSeconds));
  // The rate limiter names its header after the limit (Retry-After-login); clients read the standard one (RFC 9110).
  const limiterRetryAfter = res.getHeader(`retry-after-${RATE_LIMIT_NAME}`);
  if (answer.status === 429 && limiterRetryAfter !== undefined && !res.hasHeader('retry-after')) {
    res.setHeader('retry-after', String(limiterRetryAfter));
  }
  res.status(answer.status).json(answer.body);
}

/**
 * Catches everything; answers `{ error, message, correlationId }`; never leaks a stack trace or SQL. Only a real
 * failure of the hub is logged at error level; "try again" (503: database or storage unavailable) at warn, since
 * the client retries and the health check reports the cause; client mistakes are logged by the request logger.
 */
@Catch()
export class GlobalExceptionFilter implements ExceptionFilter {
  constructor(@InjectPinoLogger('Errors') private readonly logger: PinoLogger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<Request>();
    const res = ctx.getResponse<Response>();
    const correlationId = correlationIdOf(req);
    const answer = errorBodyFor(exception, correlationId);
    if (answer.status === 503) {
      this.logger.warn({ err: exception, correlationId, error: answer.body.error }, 'request deferred: try again');
    } else if (answer.status >= 500) {
      this.logger.error({ err: exception, correlationId, error: answer.body.error }, 'request failed');
    }
    if (res.headersSent) return;
    sendError(res, answer);
  }
}
