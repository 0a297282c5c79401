import { ArgumentsHost, Catch, HttpException, HttpStatus, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { HubException, httpStatusOf } from './hub.exception';

/** The one shape every error takes on the wire. */
export interface ErrorBody {
  error: string;
  message: string;
  correlationId: string;
  details?: unknown;
}

export function correlationIdOf(req: Request): string {
  const id = (req as Request & { id?: unknown }).id;
  return typeof id === 'string' ? id : String(id ?? 'unknown');
}

/** Body-parser's errors carry an HTTP status and a `type`; translate them into our vocabulary. */
interface HttpParserError {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
  message?: string;
}

export function errorBodyFor(err: unknown, correlationId: string): { status: number; body: ErrorBody } {
  if (err instanceof HubException) {
    const body: ErrorBody = { error: err.code, message: err.message, correlationId };
    if (err.details !== undefined) body.details = err.details;
    return { status: httpStatusOf(err.code), body };
  }
  if (err instanceof HttpException) {
    const status = err.getStatus();
    const res = err.getResponse();
    let message = err.message;
    let details: unknown;
    if (typeof res === 'object' && res !== null && 'message' in res) {
      const m = (res as { message: unknown }).message;
      if (Array.isArray(m)) {
        details = m;
        message = m.join('; ');
      } else if (typeof m === 'string') {
        message = m;
      }
    }
    const body: ErrorBody = { error: HttpStatus[status] ?? 'ERROR', message, correlationId };
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
    return { status: parserStatus, body: { error: HttpStatus[parserStatus] ?? 'ERROR', message, correlationId } };
  }
  return {
    status: HttpStatus.INTERNAL_SERVER_ERROR,
    body: {
      error: 'INTERNAL_SERVER_ERROR',
      message: 'The hub could not complete the request. Quote the correlation id to the operator.',
      correlationId,
    },
  };
}

/** Catches everything; answers `{ error, message, correlationId }`; never leaks a stack trace or SQL. */
@Catch()
export class GlobalExceptionFilter implements ExceptionFilter {
  constructor(@InjectPinoLogger('Errors') private readonly logger: PinoLogger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<Request>();
    const res = ctx.getResponse<Response>();
    const correlationId = correlationIdOf(req);
    const { status, body } = errorBodyFor(exception, correlationId);
    if (status >= 500) {
      this.logger.error({ err: exception, correlationId }, 'request failed');
    }
    if (res.headersSent) return;
    res.status(status).json(body);
  }
}
