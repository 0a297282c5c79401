import { Body, Controller, Get, HttpCode, Param, ParseUUIDPipe, Post, Put, Query, Req, Res } from '@nestjs/common';
import type { PrivacyMechanism } from '@tessera/dp';
import type { Response } from 'express';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { Access } from '../access/access.decorator';
import { actorOf, type AuthenticatedRequest } from '../sessions/current-user';
import { RoundsQueryService, type RoundView } from '../rounds/rounds-query.service';
import { StopStudyDto, StudyPlanDto } from './dto/study.dto';
import { StudyListQueryDto } from './dto/study-pages.dto';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { MODEL_FILES, ModelExportService, type ModelFile } from './model-export.service';
import { PrivacyLedgerService, type LedgerEntryView, type SiloBudget } from '../privacy/privacy-ledger.service';
import { StudiesService, type StudyView } from './studies.service';
import { legacyMechanismOf, storedPlanOf } from '../study-state/stored-plan.util';
import { ReadCache } from '../database/read-cache';
import { Endpoint } from '../openapi/endpoint.decorator';

export interface StudyPrivacyView {
  mode: string;
  mechanism: PrivacyMechanism | null;
  entries: LedgerEntryView[];
  budgets: SiloBudget[];
}

/** Study administration: plans, invitations, lifecycle; auditors may read. */
@ApiTags('studies')
@ApiBearerAuth()
@Controller('api/studies')
export class StudiesController {
  constructor(
    private readonly studies: StudiesService,
    private readonly rounds: RoundsQueryService,
    private readonly models: ModelExportService,
    private readonly ledger: PrivacyLedgerService,
    private readonly cache: ReadCache,
  ) {}

  /** The final model: model.json + weights.bin (TensorFlow.js), model.onnx, or parameters.f32 (raw float32). */
  @Access('admin')
  @Get(':id/model/:file')
  @Endpoint({
    summary: 'Download the final model',
    answer: {
      media: ['application/json', 'application/octet-stream'],
      description:
        'model.json (TensorFlow.js), weights.bin, model.onnx or parameters.f32; x-model-sha256 names the model.',
    },
  })
  async model(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Param('file') file: string,
    @Req() req: AuthenticatedRequest,
    @Res() res: Response,
  ): Promise<void> {
    if (!(MODEL_FILES as readonly string[]).includes(file)) {
      throw new HubException(HubErrorCode.NOT_FOUND, `Unknown model file "${file}"; one of ${MODEL_FILES.join(', ')}.`);
    }
    const out = await this.models.file(id, file as ModelFile, actorOf(req));
    res.status(200).setHeader('content-type', out.contentType);
    res.setHeader('x-model-sha256', out.modelHash);
    res.setHeader('content-disposition', `attachment; filename="${file}"`);
    res.end(out.bytes);
  }

  /** Newest first; archived studies are left out unless `?archived=include` or `?archived=only`. */
  @Access('admin', 'auditor')
  @Get()
  @Endpoint({ summary: 'List studies', answer: { schema: 'StudyView', list: true } })
  list(@Query() query: StudyListQueryDto): Promise<StudyView[]> {
    const archived = query.archived ?? 'exclude';
    return this.cache.read(`studies:${archived}`, () => this.studies.list(archived));
  }

  @Access('admin', 'auditor')
  @Get(':id')
  @Endpoint({ summary: 'Read a study with its plan and the silos’ decisions', answer: { schema: 'StudyView' } })
  get(@Param('id', new ParseUUIDPipe()) id: string): Promise<StudyView> {
    return this.cache.read(`study:${id}`, () => this.studies.get(id));
  }

  /**
   * The study's privacy ledger: the mechanism, every charge (made when a task was issued) with the silo's report
   * beside it, and each silo's figure (the larger of the hub's charges and the silo's reports).
   */
  @Access('admin', 'auditor')
  @Get(':id/privacy')
  @Endpoint({ summary: 'A study’s privacy ledger and each silo’s budget', answer: { schema: 'StudyPrivacyView' } })
  privacy(@Param('id', new ParseUUIDPipe()) id: string): Promise<StudyPrivacyView> {
    return this.cache.read(`privacy:${id}`, () => this.privacyView(id));
  }

  private async privacyView(id: string): Promise<StudyPrivacyView> {
    const study = await this.studies.entity(id);
    if (!storedPlanOf(study.plan).current) {
      // A plan of an earlier format: the mechanism the stewards approved (stored with the study) and the charges as
      // recorded; no budgets, since the current accounting reads parts of the plan the earlier format lacks.
      return {
        mode: study.privacyCost?.mechanism ?? 'none',
        mechanism: legacyMechanismOf(study.privacyCost),
        entries: await this.ledger.ledger(id),
        budgets: [],
      };
    }
    const mechanism = this.ledger.mechanismOf(study.planHash, study.plan);
    return {
      mode: study.plan.privacy.mode,
      mechanism,
      entries: await this.ledger.ledger(id),
      budgets: await this.ledger.budgets(
        this.ledger.manager(),
        study,
        study.participants.length ? study.participants : study.plan.silos,
      ),
    };
  }

  @Access('admin', 'auditor')
  @Get(':id/rounds')
  @Endpoint({ summary: 'A study’s rounds, oldest first', answer: { schema: 'RoundView', list: true } })
  roundsOf(@Param('id', new ParseUUIDPipe()) id: string): Promise<RoundView[]> {
    return this.cache.read(`rounds:${id}`, () => this.rounds.roundsOf(id));
  }

  @Access('admin')
  @Post()
  @Endpoint({ summary: 'Create a study from a plan', answer: { schema: 'StudyView' } })
  create(@Body() dto: StudyPlanDto, @Req() req: AuthenticatedRequest): Promise<StudyView> {
    return this.studies.create(dto.plan, actorOf(req));
  }

  /** A new plan version: every silo must approve its new hash. */
  @Access('admin')
  @Put(':id/plan')
  @Endpoint({ summary: 'Replace the plan: a new version every silo must approve', answer: { schema: 'StudyView' } })
  updatePlan(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() dto: StudyPlanDto,
    @Req() req: AuthenticatedRequest,
  ): Promise<StudyView> {
    return this.studies.updatePlan(id, dto.plan, actorOf(req));
  }

  @Access('admin')
  @Post(':id/submit')
  @HttpCode(200)
  @Endpoint({ summary: 'Invite the plan’s silos to decide', answer: { schema: 'StudyView' } })
  submit(@Param('id', new ParseUUIDPipe()) id: string, @Req() req: AuthenticatedRequest): Promise<StudyView> {
    return this.studies.submit(id, actorOf(req));
  }

  @Access('admin')
  @Post(':id/start')
  @HttpCode(200)
  @Endpoint({ summary: 'Start with the silos that approved the current plan', answer: { schema: 'StudyView' } })
  start(@Param('id', new ParseUUIDPipe()) id: string, @Req() req: AuthenticatedRequest): Promise<StudyView> {
    return this.studies.start(id, actorOf(req));
  }

  @Access('admin')
  @Post(':id/stop')
  @HttpCode(200)
  @Endpoint({ summary: 'Stop a study', answer: { schema: 'StudyView' } })
  stop(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() dto: StopStudyDto,
    @Req() req: AuthenticatedRequest,
  ): Promise<StudyView> {
    return this.studies.stop(id, dto.reason, actorOf(req));
  }
}
