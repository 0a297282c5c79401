import { Controller, Get, Param, ParseUUIDPipe, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Access } from '../access/access.decorator';
import { userOf, type AuthenticatedRequest } from '../sessions/current-user';
import { SessionWatch } from '../sessions/session-watch.service';
import { openEventStream } from './event-stream';
import { StudyLiveFeedService } from './study-live-feed.service';
import { Endpoint } from '../openapi/endpoint.decorator';

/** Comment lines keep proxies and idle timeouts from closing a quiet stream (ms). */
export const HEARTBEAT_MS = 15_000;

/**
 * The console's live study view: server-sent events, one `data: <StudyLiveMessage JSON>` message whenever the study
 * or its rounds change. The console reads it with fetch() so the bearer token travels in the Authorization header
 * (EventSource cannot send one, and tokens do not belong in URLs). The stream lives as long as the session that
 * opened it, not its access token: it ends within a second of the session ending (sign-out, revocation, disabled
 * account, expiry), and the console then reconnects with a fresh token or signs in again.
 */
@ApiTags('studies')
@ApiBearerAuth()
@Controller('api/studies')
export class StudyEventsController {
  constructor(
    private readonly feed: StudyLiveFeedService,
    private readonly sessions: SessionWatch,
  ) {}

  @Access('admin', 'auditor')
  @Get(':id/events')
  @ApiProduces('text/event-stream')
  @Endpoint({
    summary: 'Follow a study live (server-sent events)',
    description:
      'One `data:` line of StudyLiveMessage JSON whenever the study or its rounds change; comment lines as heartbeats. Ends when the session ends.',
    answer: { media: ['text/event-stream'], description: 'A stream of `data: <StudyLiveMessage JSON>` events.' },
  })
  async events(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Req() req: AuthenticatedRequest,
    @Res() res: Response,
  ): Promise<void> {
    const { sessionId } = userOf(req);
    // Read once before the stream opens, so an unknown study answers a plain 404 error body.
    const first = await this.feed.snapshot(id);
    const stream = openEventStream(req, res, { heartbeatMs: HEARTBEAT_MS });
    stream.onClose(this.feed.subscribe(id, stream, first));
    stream.onClose(this.sessions.watch(sessionId, () => stream.end()));
  }
}
