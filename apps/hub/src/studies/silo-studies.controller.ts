import {
  Body,
  Controller,
  Get,
  HttpCode,
  Param,
  ParseIntPipe,
  ParseUUIDPipe,
  Post,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import { ApiQuery, ApiTags } from '@nestjs/swagger';
import {
  EvaluationReport,
  FailureReport,
  type SiloStudy,
  type TasksResponse,
  type UpdateReceipt,
} from '@tessera/protocol';
import type { Request, Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { Access } from '../access/access.decorator';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { RoundsService } from '../rounds/rounds.service';
import { siloOf } from '../silos/silo-identity';
import { DecisionDto } from './dto/study.dto';
import { StudiesService } from './studies.service';
import { Endpoint } from '../openapi/endpoint.decorator';

const MAX_WAIT_SECONDS = 30;

function parseWith<T>(
  schema: {
    safeParse(
      v: unknown,
    ): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } };
  },
  value: unknown,
): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.map(String).join('.') || 'body'}: ${i.message}`);
    throw new HubException(HubErrorCode.VALIDATION_FAILED, problems.join('; '), problems);
  }
  return parsed.data;
}

/** The study protocol for agents, on the mutual-TLS listener; the calling silo is its certificate's. */
@ApiTags('silo protocol')
@Access('silo')
@Controller('silo/v1')
export class SiloStudiesController {
  constructor(
    private readonly studies: StudiesService,
    private readonly rounds: RoundsService,
  ) {}

  @Get('studies')
  @Endpoint({
    summary: 'The studies this silo is invited to, with their plans',
    answer: { schema: 'SiloStudy', list: true },
  })
  list(@Req() req: Request): Promise<SiloStudy[]> {
    const siloId = siloOf(req).siloId;
    // Before the read: a change committed from here on ends this silo's next long poll at once.
    this.rounds.studiesRead(siloId);
    return this.studies.forSilo(siloId);
  }

  @Post('studies/:id/decision')
  @HttpCode(200)
  @Endpoint({ summary: 'Approve or reject the exact plan hash', answer: { schema: 'SiloStudy' } })
  decide(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() dto: DecisionDto,
    @Req() req: Request,
  ): Promise<SiloStudy> {
    return this.studies.decide(siloOf(req).siloId, id, dto.planHash, dto.decision, dto.reason);
  }

  /**
   * Long poll: answers as soon as a task waits for this silo, as soon as the hub opened or closed a round or a study
   * started, stopped or ended, or at once if that happened since the silo last listed its studies (then possibly with
   * no task: the agent reads its studies again), or after `wait` seconds with none.
   */
  @Get('tasks')
  @ApiQuery({
    name: 'wait',
    required: false,
    schema: { type: 'integer', minimum: 0, maximum: MAX_WAIT_SECONDS, default: 0 },
    description: 'Seconds to wait for a task before answering an empty list.',
  })
  @Endpoint({ summary: 'Long poll for this silo’s tasks', answer: { schema: 'TasksResponse' } })
  async tasks(@Query('wait') wait: string | undefined, @Req() req: Request): Promise<TasksResponse> {
    const seconds = wait === undefined ? 0 : Number(wait);
    if (!Number.isFinite(seconds) || seconds < 0 || seconds > MAX_WAIT_SECONDS) {
      throw new HubException(
        HubErrorCode.VALIDATION_FAILED,
        `wait must be a number of seconds from 0 to ${MAX_WAIT_SECONDS}`,
      );
    }
    return { tasks: await this.rounds.tasksFor(siloOf(req).siloId, seconds * 1000) };
  }

  @Get('blobs/:hash')
  @Endpoint({
    summary: 'Download a model this silo’s task names',
    answer: {
      media: ['application/octet-stream'],
      description: 'The model’s float32 parameters; x-content-sha256 names their hash.',
    },
  })
  async blob(@Param('hash') hash: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    if (!/^[0-9a-f]{64}$/.test(hash))
      throw new HubException(HubErrorCode.VALIDATION_FAILED, 'hash must be 64 lowercase hex digits');
    const stream = await this.rounds.modelForSilo(siloOf(req).siloId, hash);
    res.status(200).setHeader('content-type', 'application/octet-stream');
    res.setHeader('x-content-sha256', hash);
    await pipeline(stream, res);
  }

  /** A framed binary update ('TSU1' | header | float32 payload), streamed into the blob store while validated. */
  @Post('studies/:id/rounds/:round/update')
  @HttpCode(200)
  @Endpoint({
    summary: 'Upload a model update (streamed, checked while received)',
    body: {
      media: 'application/octet-stream',
      description: "A framed update: 'TSU1' | header length | header JSON | float32 payload.",
    },
    answer: { schema: 'UpdateReceipt' },
  })
  update(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Param('round', new ParseIntPipe()) round: number,
    @Req() req: Request,
  ): Promise<UpdateReceipt> {
    const type = req.headers['content-type'] ?? '';
    if (!type.startsWith('application/octet-stream')) {
      req.resume();
      throw new HubException(
        HubErrorCode.UPDATE_MALFORMED,
        'An update is sent as application/octet-stream, never as JSON.',
      );
    }
    return this.rounds.acceptUpdate(siloOf(req), id, round, req);
  }

  @Post('studies/:id/rounds/:round/evaluation')
  @HttpCode(200)
  @Endpoint({
    summary: 'Report this silo’s evaluation of the round’s model',
    body: { schema: 'EvaluationReport' },
    answer: { schema: 'AcceptedView' },
  })
  evaluation(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Param('round', new ParseIntPipe()) round: number,
    @Body() body: unknown,
    @Req() req: Request,
  ): Promise<{ accepted: true }> {
    return this.rounds.acceptEvaluation(siloOf(req), id, round, parseWith(EvaluationReport, body));
  }

  @Post('studies/:id/rounds/:round/failure')
  @HttpCode(200)
  @Endpoint({
    summary: 'Report that this silo could not do its task',
    body: { schema: 'FailureReport' },
    answer: { schema: 'AcceptedView' },
  })
  failure(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Param('round', new ParseIntPipe()) round: number,
    @Body() body: unknown,
    @Req() req: Request,
  ): Promise<{ accepted: true }> {
    return this.rounds.acceptFailure(siloOf(req), id, round, parseWith(FailureReport, body));
  }
}
