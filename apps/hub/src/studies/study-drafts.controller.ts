import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Post, Put, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { StudyDraftView } from '@tessera/protocol';
import { Access } from '../access/access.decorator';
import { actorOf, type AuthenticatedRequest } from '../sessions/current-user';
import { StudyDraftDto } from './dto/study-pages.dto';
import { StudyDraftsService } from './study-drafts.service';
import { Endpoint } from '../openapi/endpoint.decorator';

/** The study wizard's drafts, saved on the hub as they are edited: each administrator sees their own. */
@ApiTags('studies')
@ApiBearerAuth()
@Controller('api/study-drafts')
export class StudyDraftsController {
  constructor(private readonly drafts: StudyDraftsService) {}

  @Access('admin')
  @Get()
  @Endpoint({
    summary: 'The signed-in administrator’s saved wizard drafts',
    answer: { schema: 'StudyDraftView', list: true },
  })
  list(@Req() req: AuthenticatedRequest): Promise<StudyDraftView[]> {
    return this.drafts.list(actorOf(req));
  }

  @Access('admin')
  @Get(':id')
  @Endpoint({ summary: 'Read a saved wizard draft', answer: { schema: 'StudyDraftView' } })
  get(@Param('id', new ParseUUIDPipe()) id: string, @Req() req: AuthenticatedRequest): Promise<StudyDraftView> {
    return this.drafts.get(id, actorOf(req));
  }

  @Access('admin')
  @Post()
  @Endpoint({ summary: 'Save a new wizard draft', answer: { schema: 'StudyDraftView' } })
  create(@Body() dto: StudyDraftDto, @Req() req: AuthenticatedRequest): Promise<StudyDraftView> {
    return this.drafts.create(dto, actorOf(req));
  }

  @Access('admin')
  @Put(':id')
  @Endpoint({ summary: 'Save a wizard draft again', answer: { schema: 'StudyDraftView' } })
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
  @Endpoint({ summary: 'Delete a wizard draft', answer: { empty: true } })
  async remove(@Param('id', new ParseUUIDPipe()) id: string, @Req() req: AuthenticatedRequest): Promise<void> {
    await this.drafts.remove(id, actorOf(req));
  }
}
