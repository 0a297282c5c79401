import { Inject, Injectable } from '@nestjs/common';
import type { StudyDraftView } from '@tessera/protocol';
import { AuditTrail, type AuditActor } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { assertNotArchived } from './studies.service';
import { StudyDraftEntity } from './study-draft.entity';
import { StudyDraftsRepository, type StudyDraftsUnitOfWork } from './study-drafts.repository';

export interface DraftInput {
  form: Record<string, unknown>;
  step: number;
  studyId?: string | null;
}

/** What a draft is listed as: the plan name typed so far. */
export function draftTitle(form: Record<string, unknown>): string {
  const name = typeof form.name === 'string' ? form.name.trim() : '';
  return name === '' ? 'Untitled draft' : name.slice(0, 200);
}

/**
 * The study wizard's drafts, kept on the hub per administrator: saved as the form is edited, listed, resumed, and
 * deleted once the plan became a study. The form is the console's own shape; the hub judges it only when it is
 * submitted as a plan. Each change is recorded in the audit chain (without the form's content).
 */
@Injectable()
export class StudyDraftsService {
  constructor(
    private readonly repository: StudyDraftsRepository,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
  ) {}

  async list(actor: AuditActor): Promise<StudyDraftView[]> {
    const rows = await this.repository.listDrafts(actor.id);
    return rows.map(viewOf);
  }

  async get(id: string, actor: AuditActor): Promise<StudyDraftView> {
    return viewOf(await this.mine(id, actor));
  }

  async create(input: DraftInput, actor: AuditActor): Promise<StudyDraftView> {
    const studyId = input.studyId ?? null;
    const saved = await this.repository.inTransaction(async (tx) => {
      if (studyId) {
        const study = await tx.findStudy(studyId);
        if (!study)
          throw new HubException(HubErrorCode.NOT_FOUND, `No study with id ${studyId} to draft a version of.`);
        assertNotArchived(study);
        if (!['draft', 'awaiting_approvals'].includes(study.status)) {
          throw new HubException(HubErrorCode.STUDY_STATE, `A ${study.status} study's plan can no longer change.`);
        }
      }
      const row = await tx.insertDraft({
        title: draftTitle(input.form),
        studyId,
        form: input.form,
        step: input.step,
        createdBy: actor.id,
      });
      await this.audit.record({
        actor,
        action: 'study.draft.created',
        subject: studyId ? { studyId } : {},
        details: { draftId: row.id, title: row.title },
      });
      return row;
    });
    return viewOf(saved);
  }

  async save(id: string, input: DraftInput, actor: AuditActor): Promise<StudyDraftView> {
    await this.repository.inTransaction(async (tx) => {
      const draft = await this.mine(id, actor, tx);
      const title = draftTitle(input.form);
      await tx.saveDraft(Object.assign(draft, { form: input.form, step: input.step, title }));
      await this.audit.record({
        actor,
        action: 'study.draft.saved',
        subject: draft.studyId ? { studyId: draft.studyId } : {},
        details: { draftId: id, title, step: input.step },
      });
    });
    return this.get(id, actor);
  }

  async remove(id: string, actor: AuditActor): Promise<void> {
    await this.repository.inTransaction(async (tx) => {
      const draft = await this.mine(id, actor, tx);
      await tx.deleteDraft(id);
      await this.audit.record({
        actor,
        action: 'study.draft.deleted',
        subject: draft.studyId ? { studyId: draft.studyId } : {},
        details: { draftId: id, title: draft.title },
      });
    });
  }

  /** Another administrator's draft is answered as missing: drafts are their author's own work in progress. */
  private async mine(
    id: string,
    actor: AuditActor,
    from: Pick<StudyDraftsUnitOfWork, 'findDraft'> = this.repository,
  ): Promise<StudyDraftEntity> {
    const draft = await from.findDraft(id, actor.id);
    if (!draft) throw new HubException(HubErrorCode.NOT_FOUND, `No draft with id ${id} of yours.`);
    return draft;
  }
}

function viewOf(d: StudyDraftEntity): StudyDraftView {
  return {
    id: d.id,
    title: d.title,
    studyId: d.studyId,
    form: d.form,
    step: d.step,
    createdBy: d.createdBy,
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
  };
}
