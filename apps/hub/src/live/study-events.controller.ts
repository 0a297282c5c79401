import { Controller, Get, Param, ParseUUIDPipe, Req, Res } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { ApiBearerAuth, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Access } from '../auth/access.decorator';
import { openEventStream } from './event-stream';
import { StudyLiveFeedService } from './study-live-feed.service';

/** Comment lines keep proxies and idle timeouts from closing a quiet stream (ms). */
export const HEARTBEAT_MS = 15_000;

/**
 * The console's live study view: server-sent events, one `data: <StudyLiveMessage JSON>` message whenever the study
 * or its rounds change. The console reads it with fetch() so the bearer token travels in the Authorization header
 * (EventSource cannot send one, and tokens do not belong in URLs). The stream ends when the session token expires.
 */
@ApiTags('studies')
@ApiBearerAuth()
@Controller('api/studies')
export class StudyEventsController {
  constructor(
    private readonly feed: StudyLiveFeedService,
    private readonly jwt: JwtService,
  ) {}

  @Access('admin', 'auditor')
  @Get(':id/events')
  @ApiProduces('text/event-stream')
  async events(@Param('id', new ParseUUIDPipe()) id: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    // Read once before the stream opens, so an unknown study answers a plain 404 error body.
    const first = await this.feed.snapshot(id);
    const stream = openEventStream(req, res, { heartbeatMs: HEARTBEAT_MS, endAt: this.sessionExpiry(req) });
    stream.onClose(this.feed.subscribe(id, stream, first));
  }

  /** When the bearer token that opened the stream expires (the guard verified it; here it is only read). */
  private sessionExpiry(req: Request): Date | undefined {
    const token = req.headers.authorization?.replace(/^Bearer\s+/i, '');
    const claims = token ? (this.jwt.decode<{ exp?: number } | null>(token) ?? null) : null;
    return typeof claims?.exp === 'number' ? new Date(claims.exp * 1000) : undefined;
  }
}
