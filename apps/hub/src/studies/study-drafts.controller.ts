import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Post, Put, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { StudyDraftView } from '@tessera/protocol';
import { Access } from '../auth/access.decorator';
import { actorOf, type AuthenticatedRequest } from '../auth/current-user';
import { StudyDraftDto } from './dto/study-pages.dto';
import { StudyDraftsService } from './study-drafts.service';

/** The study wizard's drafts, saved on the hub as they are edited: each administrator sees their own. */
@ApiTags('studies')
@ApiBearerAuth()
@Controller('api/study-drafts')
export class StudyDraftsController {
  constructor(private readonly drafts: StudyDraftsService) {}

  @Access('admin')
  @Get()
  list(@Req() req: AuthenticatedRequest): Promise<StudyDraftView[]> {
    return this.drafts.list(actorOf(req));
  }

  @Access('admin')
  @Get(':id')
  get(@Param('id', new ParseUUIDPipe()) id: string, @Req() req: AuthenticatedRequest): Promise<StudyDraftView> {
    return this.drafts.get(id, actorOf(req));
  }

  @Access('admin')
  @Post()
  create(@Body() dto: StudyDraftDto, @Req() req: AuthenticatedRequest): Promise<StudyDraftView> {
    return this.drafts.create(dto, actorOf(req));
  }

  @Access('admin')
  @Put(':id')
  save(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() dto: StudyDraftDto,
    @Req() req: AuthenticatedRequest,
  ): Promise<StudyDraftView> {
    return this.drafts.save(id, { form: dto.form, step: dto.step }, actorOf(req));
  }

  @Access('admin')
  @Delete(':id')
  @HttpCode(204)
  async remove(@Param('id', new ParseUUIDPipe()) id: string, @Req() req: AuthenticatedRequest): Promise<void> {
    await this.drafts.remove(id, actorOf(req));
  }
}
