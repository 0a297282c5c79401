import { Body, Controller, Get, HttpCode, Param, ParseIntPipe, ParseUUIDPipe, Post, Query, Req } from '@nestjs/common';
import { ApiQuery, ApiTags } from '@nestjs/swagger';
import {
  MAX_MASKED_INPUT_HEADER_BYTES,
  type SecAggAdvertisementsView,
  type SecAggReceipt,
  type SecAggSessionView,
  type SecAggSharesView,
  type SecAggUnmaskingView,
} from '@tessera/protocol';
import { maskedVectorBytes } from '@tessera/secagg';
import type { Request } from 'express';
import { Access } from '../access/access.decorator';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { siloOf } from '../silos/silo-identity';
import { SecAggMessagesService } from './secagg-messages.service';
import { SecAggSessionsService } from './secagg-sessions.service';
import { Endpoint } from '../openapi/endpoint.decorator';

/** Longest wait a stage view's long poll may ask for. */
const MAX_STAGE_WAIT_SECONDS = 30;

const WAIT_QUERY = {
  name: 'wait',
  required: false,
  schema: { type: 'integer' as const, minimum: 0, maximum: MAX_STAGE_WAIT_SECONDS, default: 0 },
  description: 'Seconds to wait for the stage to close before answering "not ready" (a long poll; 0: answer now).',
};

/** The `wait` query in ms: whole seconds from 0 to MAX_STAGE_WAIT_SECONDS, 0 when absent; refused otherwise. */
export function waitMsOf(wait: string | undefined): number {
  if (wait === undefined) return 0;
  const seconds = /^\d{1,2}$/.test(wait) ? Number(wait) : NaN;
  if (!(seconds <= MAX_STAGE_WAIT_SECONDS)) {
    throw new HubException(
      HubErrorCode.VALIDATION_FAILED,
      `wait must be a whole number of seconds from 0 to ${MAX_STAGE_WAIT_SECONDS}`,
    );
  }
  return seconds * 1000;
}

/**
 * Secure aggregation's stages on the mutual-TLS silo listener (SECAGG_API in @tessera/protocol): the calling silo is
 * its certificate's, and every route addresses the study's open round by number.
 */
@ApiTags('silo protocol')
@Access('silo')
@Controller('silo/v1/studies/:id/rounds/:round/secagg')
export class SecAggController {
  constructor(
    private readonly sessions: SecAggSessionsService,
    private readonly messages: SecAggMessagesService,
  ) {}

  @Get()
  @Endpoint({
    summary: 'The round’s secure-aggregation session as this silo sees it',
    answer: { schema: 'SecAggSessionView' },
  })
  async session(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Param('round', new ParseIntPipe()) round: number,
    @Req() req: Request,
  ): Promise<SecAggSessionView> {
    const silo = siloOf(req);
    return this.sessions.view(await this.sessions.roundFor(silo, id, round), silo.siloId);
  }

  @Post('keys')
  @HttpCode(200)
  @Endpoint({
    summary: 'Advertise this silo’s key-agreement keys',
    body: { schema: 'KeyAdvertisement' },
    answer: { schema: 'SecAggReceipt' },
  })
  async advertise(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Param('round', new ParseIntPipe()) round: number,
    @Body() body: unknown,
    @Req() req: Request,
  ): Promise<SecAggReceipt> {
    const silo = siloOf(req);
    return this.messages.advertise(await this.sessions.roundFor(silo, id, round), silo.siloId, body);
  }

  @Get('keys')
  @ApiQuery(WAIT_QUERY)
  @Endpoint({
    summary: 'The neighbours’ advertised keys, once the stage closed',
    answer: { schema: 'SecAggAdvertisementsView' },
  })
  async advertisements(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Param('round', new ParseIntPipe()) round: number,
    @Query('wait') wait: string | undefined,
    @Req() req: Request,
  ): Promise<SecAggAdvertisementsView> {
    const silo = siloOf(req);
    const waitMs = waitMsOf(wait);
    const roundId = await this.sessions.roundFor(silo, id, round);
    return this.sessions.waitFor(roundId, waitMs, (now) => this.sessions.advertisements(roundId, silo.siloId, now));
  }

  @Post('shares')
  @HttpCode(200)
  @Endpoint({
    summary: 'Send this silo’s encrypted key shares',
    body: { schema: 'ShareKeysMessage' },
    answer: { schema: 'SecAggReceipt' },
  })
  async share(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Param('round', new ParseIntPipe()) round: number,
    @Body() body: unknown,
    @Req() req: Request,
  ): Promise<SecAggReceipt> {
    const silo = siloOf(req);
    return this.messages.share(await this.sessions.roundFor(silo, id, round), silo.siloId, body);
  }

  @Get('shares')
  @ApiQuery(WAIT_QUERY)
  @Endpoint({ summary: 'The encrypted shares addressed to this silo', answer: { schema: 'SecAggSharesView' } })
  async routedShares(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Param('round', new ParseIntPipe()) round: number,
    @Query('wait') wait: string | undefined,
    @Req() req: Request,
  ): Promise<SecAggSharesView> {
    const silo = siloOf(req);
    const waitMs = waitMsOf(wait);
    const roundId = await this.sessions.roundFor(silo, id, round);
    return this.sessions.waitFor(roundId, waitMs, (now) => this.sessions.routedShares(roundId, silo.siloId, now));
  }

  /** A masked-input frame ('TSM1' | header | packed vector), as application/octet-stream. */
  @Post('input')
  @HttpCode(200)
  @Endpoint({
    summary: 'Upload this silo’s masked input',
    body: {
      media: 'application/octet-stream',
      description: "A masked-input frame: 'TSM1' | header length | header JSON | packed vector.",
    },
    answer: { schema: 'SecAggReceipt' },
  })
  async maskedInput(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Param('round', new ParseIntPipe()) round: number,
    @Req() req: Request,
  ): Promise<SecAggReceipt> {
    const silo = siloOf(req);
    if (!(req.headers['content-type'] ?? '').startsWith('application/octet-stream')) {
      req.resume();
      throw new HubException(HubErrorCode.UPDATE_MALFORMED, 'A masked input is sent as application/octet-stream.');
    }
    const roundId = await this.sessions.roundFor(silo, id, round);
    const session = await this.sessions.find(roundId);
    const { vectorLength, modulusBits } = session!.config;
    const frame = await readBody(req, 8 + MAX_MASKED_INPUT_HEADER_BYTES + maskedVectorBytes(vectorLength, modulusBits));
    return this.messages.maskedInput(roundId, silo.siloId, frame);
  }

  @Get('unmasking')
  @ApiQuery(WAIT_QUERY)
  @Endpoint({ summary: 'Which shares the hub needs to unmask the sum', answer: { schema: 'SecAggUnmaskingView' } })
  async unmaskingRequest(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Param('round', new ParseIntPipe()) round: number,
    @Query('wait') wait: string | undefined,
    @Req() req: Request,
  ): Promise<SecAggUnmaskingView> {
    const silo = siloOf(req);
    const waitMs = waitMsOf(wait);
    const roundId = await this.sessions.roundFor(silo, id, round);
    return this.sessions.waitFor(roundId, waitMs, (now) => this.sessions.unmaskingRequest(roundId, silo.siloId, now));
  }

  @Post('unmasking')
  @HttpCode(200)
  @Endpoint({
    summary: 'Reveal the shares the unmasking needs',
    body: { schema: 'UnmaskingResponse' },
    answer: { schema: 'SecAggReceipt' },
  })
  async answerUnmasking(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Param('round', new ParseIntPipe()) round: number,
    @Body() body: unknown,
    @Req() req: Request,
  ): Promise<SecAggReceipt> {
    const silo = siloOf(req);
    return this.messages.answerUnmasking(await this.sessions.roundFor(silo, id, round), silo.siloId, body);
  }
}

/** The request body, refused (UPDATE_MALFORMED) beyond `limit` bytes before more is read. */
async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      throw new HubException(HubErrorCode.UPDATE_MALFORMED, `A masked input of this round is at most ${limit} bytes.`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
