import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { StudyEntity } from '../study-state/study.entity';
import { StudyDraftEntity } from './study-draft.entity';

/** A new draft's row as the service fills it (the database sets its id and times). */
export type NewDraft = Pick<StudyDraftEntity, 'title' | 'studyId' | 'form' | 'step' | 'createdBy'>;

/** One transaction of a change to drafts; the audit trail joins it on its own (AmbientTransactions). */
export interface StudyDraftsUnitOfWork {
  /** The study a draft of a new plan version belongs to (read, not locked: the plan is judged again on submit). */
  findStudy(id: string): Promise<StudyEntity | null>;
  insertDraft(draft: NewDraft): Promise<StudyDraftEntity>;
  /** The author's draft with this id; another author's is answered as missing. */
  findDraft(id: string, createdBy: string): Promise<StudyDraftEntity | null>;
  /** Stores the draft's changed fields (and a new `updatedAt`). */
  saveDraft(draft: StudyDraftEntity): Promise<void>;
  deleteDraft(id: string): Promise<void>;
}

function findDraft(m: EntityManager, id: string, createdBy: string): Promise<StudyDraftEntity | null> {
  return m.getRepository(StudyDraftEntity).findOne({ where: { id, createdBy } });
}

function unitOfWork(tx: EntityManager): StudyDraftsUnitOfWork {
  const drafts = tx.getRepository(StudyDraftEntity);
  return {
    findStudy: (id) => tx.getRepository(StudyEntity).findOne({ where: { id } }),
    insertDraft: (draft) => drafts.save(drafts.create(draft)),
    findDraft: (id, createdBy) => findDraft(tx, id, createdBy),
    saveDraft: async (draft) => {
      await drafts.save(draft);
    },
    deleteDraft: async (id) => {
      await drafts.delete(id);
    },
  };
}

/** The `study_drafts` table (the study wizard's forms): the only code of the drafts that runs SQL or uses TypeORM. */
@Injectable()
export class StudyDraftsRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  inTransaction<T>(work: (tx: StudyDraftsUnitOfWork) => Promise<T>): Promise<T> {
    return this.db.transaction((manager) => work(unitOfWork(manager)));
  }

  /** The author's drafts, most recently saved first. */
  listDrafts(createdBy: string): Promise<StudyDraftEntity[]> {
    return this.db.getRepository(StudyDraftEntity).find({ where: { createdBy }, order: { updatedAt: 'DESC' } });
  }

  findDraft(id: string, createdBy: string): Promise<StudyDraftEntity | null> {
    return findDraft(this.db.manager, id, createdBy);
  }
}
