import { Body, Controller, Get, HttpCode, Param, ParseUUIDPipe, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { DecisionHistoryView, PlanVersionsView, RoundHistoryView, StudyView } from '@tessera/protocol';
import { Access } from '../access/access.decorator';
import { actorOf, type AuthenticatedRequest } from '../sessions/current-user';
import { ReadCache } from '../database/read-cache';
import { PauseStudyDto } from './dto/study-pages.dto';
import { StudyHistoryService } from './study-history.service';
import { StudyLifecycleService } from './study-lifecycle.service';
import { Endpoint } from '../openapi/endpoint.decorator';

/** A study's history (rounds per silo, decisions, plan versions) and its lifecycle: pause, resume, archive, clone. */
@ApiTags('studies')
@ApiBearerAuth()
@Controller('api/studies')
export class StudyPagesController {
  constructor(
    private readonly history: StudyHistoryService,
    private readonly lifecycle: StudyLifecycleService,
    private readonly cache: ReadCache,
  ) {}

  /** Every attempt of every round, with each silo's status in it (trained, late, failed with why, dropped…). */
  @Access('admin', 'auditor')
  @Get(':id/round-history')
  @Endpoint({ summary: 'Each silo’s part in every round of a study', answer: { schema: 'RoundHistoryView' } })
  roundHistory(@Param('id', new ParseUUIDPipe()) id: string): Promise<RoundHistoryView> {
    return this.cache.read(`round-history:${id}`, () => this.history.roundHistory(id));
  }

  /** Every steward decision on every plan version, with its reason and time. */
  @Access('admin', 'auditor')
  @Get(':id/decisions')
  @Endpoint({ summary: 'Every steward decision on every plan version', answer: { schema: 'DecisionHistoryView' } })
  decisions(@Param('id', new ParseUUIDPipe()) id: string): Promise<DecisionHistoryView> {
    return this.cache.read(`decisions:${id}`, () => this.history.decisions(id));
  }

  /** Every plan version with the fields it changed from the previous one. */
  @Access('admin', 'auditor')
  @Get(':id/plan-versions')
  @Endpoint({ summary: 'The plan’s versions with field-by-field changes', answer: { schema: 'PlanVersionsView' } })
  planVersions(@Param('id', new ParseUUIDPipe()) id: string): Promise<PlanVersionsView> {
    return this.cache.read(`plan-versions:${id}`, () => this.history.planVersions(id));
  }

  /** No new round opens until resumed (the round under way finishes); agents are told and wait. */
  @Access('admin')
  @Post(':id/pause')
  @HttpCode(200)
  @Endpoint({ summary: 'Pause a running study (the next round is held back)', answer: { schema: 'StudyView' } })
  pause(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() dto: PauseStudyDto,
    @Req() req: AuthenticatedRequest,
  ): Promise<StudyView> {
    return this.lifecycle.pause(id, dto.reason, actorOf(req));
  }

  @Access('admin')
  @Post(':id/resume')
  @HttpCode(200)
  @Endpoint({ summary: 'Resume a paused study', answer: { schema: 'StudyView' } })
  resume(@Param('id', new ParseUUIDPipe()) id: string, @Req() req: AuthenticatedRequest): Promise<StudyView> {
    return this.lifecycle.resume(id, actorOf(req));
  }

  /** Read-only from now on, and left out of the default list (drafts and ended studies only). */
  @Access('admin')
  @Post(':id/archive')
  @HttpCode(200)
  @Endpoint({
    summary: 'Archive a finished study (read-only, hidden from the default list)',
    answer: { schema: 'StudyView' },
  })
  archive(@Param('id', new ParseUUIDPipe()) id: string, @Req() req: AuthenticatedRequest): Promise<StudyView> {
    return this.lifecycle.archive(id, actorOf(req));
  }

  @Access('admin')
  @Post(':id/unarchive')
  @HttpCode(200)
  @Endpoint({ summary: 'Bring an archived study back to the list', answer: { schema: 'StudyView' } })
  unarchive(@Param('id', new ParseUUIDPipe()) id: string, @Req() req: AuthenticatedRequest): Promise<StudyView> {
    return this.lifecycle.unarchive(id, actorOf(req));
  }

  /** A new draft study with the same plan and a new id (so a new plan hash); nothing else of the source. */
  @Access('admin')
  @Post(':id/clone')
  @Endpoint({ summary: 'Copy a study’s plan into a new draft study', answer: { schema: 'StudyView' } })
  clone(@Param('id', new ParseUUIDPipe()) id: string, @Req() req: AuthenticatedRequest): Promise<StudyView> {
    return this.lifecycle.clone(id, actorOf(req));
  }
}
