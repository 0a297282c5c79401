import { Inject, Injectable } from '@nestjs/common';
import type { StudyView } from '@tessera/protocol';
import { AuditTrail, type AuditActor } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { RoundOpener } from '../rounds/round-opener.service';
import { RoundsService } from '../rounds/rounds.service';
import { StudiesRepository } from './studies.repository';
import { assertNotArchived, lockedStudy, StudiesService } from './studies.service';
import { assertCurrentPlan } from '../study-state/stored-plan.util';

/** Studies that have ended (or never started) may be archived; a study under way or awaiting approvals may not. */
const ARCHIVABLE = ['draft', 'completed', 'stopped', 'failed'];

/**
 * A study's lifecycle beyond submit/start/stop: pause and resume (no new round opens while paused; the round the
 * closer held back opens on resume), archive (read-only, out of the default list), and clone as a new draft.
 * Every command is recorded in the audit chain in the transaction that makes it.
 */
@Injectable()
export class StudyLifecycleService {
  constructor(
    private readonly repository: StudiesRepository,
    private readonly studies: StudiesService,
    private readonly opener: RoundOpener,
    private readonly rounds: RoundsService,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
  ) {}

  /** The round under way finishes; the closer then holds the next one back (RoundCloser, `pausedNextRound`). */
  async pause(id: string, reason: string, actor: AuditActor): Promise<StudyView> {
    await this.repository.inTransaction(async (tx) => {
      const study = await lockedStudy(tx, id);
      assertNotArchived(study);
      if (study.status !== 'running') {
        throw new HubException(
          HubErrorCode.STUDY_STATE,
          `Only a running study can be paused (this one is ${study.status}).`,
        );
      }
      if (study.pausedAt) {
        throw new HubException(
          HubErrorCode.STUDY_STATE,
          `Study "${study.name}" is already paused (since ${study.pausedAt.toISOString()}: ${study.pauseReason ?? ''}).`,
        );
      }
      await tx.updateStudy(id, { pausedAt: new Date(), pauseReason: reason });
      await this.audit.record({ actor, action: 'study.paused', subject: { studyId: id }, details: { reason } });
    });
    return this.studies.get(id);
  }

  /** Opens the round held back while paused (charging its tasks then), or lets the round under way carry on. */
  async resume(id: string, actor: AuditActor): Promise<StudyView> {
    await this.repository.inTransaction(async (tx) => {
      const study = await lockedStudy(tx, id);
      assertNotArchived(study);
      if (study.status !== 'running' || !study.pausedAt) {
        throw new HubException(
          HubErrorCode.STUDY_STATE,
          `Only a paused study can be resumed (this one is ${study.status}, not paused).`,
        );
      }
      const held = study.pausedNextRound;
      await tx.updateStudy(id, { pausedAt: null, pauseReason: null, pausedNextRound: null });
      const charges = held ? await this.opener.open(tx.transaction, study, held) : [];
      await this.audit.record({
        actor,
        action: 'study.resumed',
        subject: { studyId: id },
        details: {
          pausedSince: study.pausedAt.toISOString(),
          ...(held ? { openedRound: held.number, attempt: held.attempt, kind: held.kind } : {}),
        },
      });
      if (held) await this.rounds.auditCharges(id, charges);
    });
    this.rounds.wake();
    return this.studies.get(id);
  }

  async archive(id: string, actor: AuditActor): Promise<StudyView> {
    await this.repository.inTransaction(async (tx) => {
      const study = await lockedStudy(tx, id);
      assertNotArchived(study);
      if (!ARCHIVABLE.includes(study.status)) {
        throw new HubException(
          HubErrorCode.STUDY_STATE,
          `A ${study.status} study cannot be archived: stop it first (only drafts and ended studies are archived).`,
        );
      }
      await tx.updateStudy(id, { archivedAt: new Date() });
      await this.audit.record({
        actor,
        action: 'study.archived',
        subject: { studyId: id },
        details: { status: study.status },
      });
    });
    return this.studies.get(id);
  }

  async unarchive(id: string, actor: AuditActor): Promise<StudyView> {
    await this.repository.inTransaction(async (tx) => {
      const study = await lockedStudy(tx, id);
      if (!study.archivedAt) throw new HubException(HubErrorCode.STUDY_STATE, `Study "${study.name}" is not archived.`);
      await tx.updateStudy(id, { archivedAt: null });
      await this.audit.record({
        actor,
        action: 'study.unarchived',
        subject: { studyId: id },
        details: { archivedAt: study.archivedAt.toISOString() },
      });
    });
    return this.studies.get(id);
  }

  /**
   * A new draft with the source's current plan (checked again: a silo may have been suspended since) and a new id,
   * so a new plan hash; none of the source's decisions, rounds, ledger or model. Archived studies may be cloned.
   */
  async clone(id: string, actor: AuditActor): Promise<StudyView> {
    const source = await this.studies.entity(id);
    assertCurrentPlan(source, 'be cloned');
    const created = await this.studies.create(source.plan, actor, source.id);
    await this.audit.record({
      actor,
      action: 'study.cloned',
      subject: { studyId: source.id },
      details: { cloneId: created.id, planVersion: source.planVersion, planHash: source.planHash },
    });
    return created;
  }
}
