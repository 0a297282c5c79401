import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { RowLocks, UniqueViolation } from '../silos/in-memory-silos.test-util';
import { SiloEntity } from '../silos/silo.entity';
import { StudyEntity } from '../study-state/study.entity';
import type {
  LegacyPlanStopsRepository,
  LegacyPlanStopsUnitOfWork,
  UnauditedStop,
} from './legacy-plan-stops.repository';
import type { ArchivedFilter } from './studies.service';
import type { CurrentPlan, OpenTransaction, StudiesRepository, StudiesUnitOfWork } from './studies.repository';
import { StudyDecisionEntity } from './study-decision.entity';
import { StudyDraftEntity } from './study-draft.entity';
import type { StudyDraftsRepository, StudyDraftsUnitOfWork } from './study-drafts.repository';
import { StudyPlanVersionEntity } from './study-plan-version.entity';
import type { StudyProgressRow } from './study-progress';

export type StudiesPort = Pick<StudiesRepository, keyof StudiesRepository>;
export type StudyDraftsPort = Pick<StudyDraftsRepository, keyof StudyDraftsRepository>;
export type LegacyPlanStopsPort = Pick<LegacyPlanStopsRepository, keyof LegacyPlanStopsRepository>;

/** A row of `legacy_plan_stops` with its study's plan, as the migration left it. */
export interface LegacyStopRow extends UnauditedStop {
  auditedAt: Date | null;
}

/** Rows a transaction inserted (whole) and the columns it set on rows that exist (applied to the newest version). */
interface Writes {
  studies: Map<string, StudyEntity>;
  studyChanges: Map<string, Partial<StudyEntity>>;
  versions: Map<string, StudyPlanVersionEntity>;
  decisions: Map<string, StudyDecisionEntity>;
  drafts: Map<string, StudyDraftEntity>;
  draftChanges: Map<string, Partial<StudyDraftEntity>>;
  deletedDrafts: Set<string>;
  stopsAudited: Map<string, Date>;
}

interface Tables {
  studies: Map<string, StudyEntity>;
  versions: Map<string, StudyPlanVersionEntity>;
  decisions: Map<string, StudyDecisionEntity>;
  drafts: Map<string, StudyDraftEntity>;
  stops: Map<string, LegacyStopRow>;
}

const emptyTables = (): Tables => ({
  studies: new Map(),
  versions: new Map(),
  decisions: new Map(),
  drafts: new Map(),
  stops: new Map(),
});

const emptyWrites = (): Writes => ({
  studies: new Map(),
  studyChanges: new Map(),
  versions: new Map(),
  decisions: new Map(),
  drafts: new Map(),
  draftChanges: new Map(),
  deletedDrafts: new Set(),
  stopsAudited: new Map(),
});

const copyOf = <T extends object>(row: T): T =>
  Object.assign(Object.create(Object.getPrototypeOf(row) as object) as T, row);

const versionKey = (studyId: string, version: number): string => `${studyId}:${version}`;

const byTime =
  <T>(at: (row: T) => Date) =>
  (a: T, b: T): number =>
    at(a).getTime() - at(b).getTime();

/** The handle the round engine gets in a study command's transaction (a spec checks which one it was). */
interface TransactionHandle {
  readonly inMemoryTransaction: number;
}

/**
 * `studies`, `study_plan_versions`, `study_decisions`, `study_drafts` and `legacy_plan_stops` in memory, behind the
 * three repositories of studies/ (`studies`, `drafts`, `legacyStops`), with the real tables' keys (a plan version's
 * (study_id, version) refuses a second row, also against a transaction that committed it meanwhile), row locks that
 * queue transactions until the holder ends (FOR UPDATE on a study) or are skipped (SKIP LOCKED on a legacy stop),
 * READ COMMITTED reads (a statement sees what committed before it plus its own writes; an UPDATE sets its columns
 * on the newest committed row), and commits only when the work resolves. `openTransaction()` says which transaction
 * the running code is in, as AmbientTransactions does for the audit trail, and `didCommit` whether it committed.
 * `silos` and the round progress are seeded and read-only here.
 */
export class InMemoryStudies {
  private committed: Tables = emptyTables();
  private readonly silosById = new Map<string, SiloEntity>();
  private readonly progressRows = new Map<string, StudyProgressRow>();
  private readonly locks = new RowLocks();
  /** Legacy stops' rows held FOR UPDATE by an open transaction (SKIP LOCKED passes them by). */
  private readonly heldStops = new Set<string>();
  private readonly context = new AsyncLocalStorage<number>();
  private readonly committedIds = new Set<number>();
  private transactions = 0;
  private lastCreated = 0;
  /** Every FOR UPDATE row lock taken, in order: `study:<id>`. */
  readonly lockLog: string[] = [];

  openTransaction(): number | undefined {
    return this.context.getStore();
  }

  didCommit(transaction: number): boolean {
    return this.committedIds.has(transaction);
  }

  /** Which transaction a handle given to the round engine belongs to. */
  static transactionOf(handle: OpenTransaction): number {
    return (handle as unknown as TransactionHandle).inMemoryTransaction;
  }

  readonly studies: StudiesPort = {
    inTransaction: (work) => this.transaction((writes, lock, id) => work(this.studiesWork(writes, lock, id))),
    findStudy: (id) => Promise.resolve(this.read(this.committed.studies, id)),
    listStudies: (archived: ArchivedFilter) => {
      const keep = (s: StudyEntity) =>
        archived === 'include' ? true : archived === 'only' ? s.archivedAt !== null : s.archivedAt === null;
      const rows = [...this.committed.studies.values()].filter(keep).sort(byTime((s) => s.createdAt));
      return Promise.resolve(rows.reverse().map(copyOf));
    },
    studiesInviting: (siloId) => {
      const rows = [...this.committed.studies.values()].filter(
        (s) => Array.isArray(s.plan.silos) && s.plan.silos.includes(siloId) && s.status !== 'draft',
      );
      return Promise.resolve(rows.sort(byTime((s) => s.createdAt)).map(copyOf));
    },
    currentDecisions: (plan) => Promise.resolve(decisionsOn(this.committed, [plan])),
    currentDecisionsOf: (plans) => Promise.resolve(decisionsOn(this.committed, plans)),
    decisionHistory: (studyId) => {
      const rows = [...this.committed.decisions.values()].filter((d) => d.studyId === studyId);
      rows.sort((a, b) => a.decidedAt.getTime() - b.decidedAt.getTime() || a.planVersion - b.planVersion);
      return Promise.resolve(rows.map(copyOf));
    },
    planVersion: (studyId, version) =>
      Promise.resolve(this.read(this.committed.versions, versionKey(studyId, version))),
    planVersions: (studyId) => {
      const rows = [...this.committed.versions.values()].filter((v) => v.studyId === studyId);
      return Promise.resolve(rows.sort((a, b) => a.version - b.version).map(copyOf));
    },
    silos: (ids) => Promise.resolve([...this.silosById.values()].filter((s) => ids.includes(s.id)).map(copyOf)),
    progress: (studyIds) =>
      Promise.resolve(
        new Map(studyIds.flatMap((id) => (this.progressRows.has(id) ? [[id, { ...this.progressRows.get(id)! }]] : []))),
      ),
  };

  readonly drafts: StudyDraftsPort = {
    inTransaction: (work) => this.transaction((writes) => work(this.draftsWork(writes))),
    listDrafts: (createdBy) => {
      const rows = [...this.committed.drafts.values()].filter((d) => d.createdBy === createdBy);
      return Promise.resolve(
        rows
          .sort(byTime((d) => d.updatedAt))
          .reverse()
          .map(copyOf),
      );
    },
    findDraft: (id, createdBy) => Promise.resolve(ownDraft(this.committed, id, createdBy)),
  };

  readonly legacyStops: LegacyPlanStopsPort = {
    inTransaction: (work) => this.transaction((writes, _lock, _id, releases) => work(this.stopsWork(writes, releases))),
  };

  /** Given state, committed outside any transaction. */
  seedSilo(fields: Partial<SiloEntity> & Pick<SiloEntity, 'name'>): SiloEntity {
    const silo = Object.assign(new SiloEntity(), {
      id: randomUUID(),
      contact: 'it@example.org',
      status: 'registered',
      suspendedReason: null,
      createdAt: this.created(),
      updatedAt: new Date(),
      ...fields,
    });
    this.silosById.set(silo.id, silo);
    return copyOf(silo);
  }

  seedStudy(fields: Partial<StudyEntity> & Pick<StudyEntity, 'name' | 'plan'>): StudyEntity {
    const study = this.newStudy({
      status: 'draft',
      planVersion: 1,
      planHash: 'f'.repeat(64),
      privacyCost: null,
      participants: [],
      createdBy: null,
      clonedFrom: null,
      ...fields,
    });
    this.committed.studies.set(study.id, study);
    return copyOf(study);
  }

  seedProgress(row: StudyProgressRow): void {
    this.progressRows.set(row.studyId, { ...row });
  }

  seedLegacyStop(row: Omit<LegacyStopRow, 'auditedAt'>): void {
    this.committed.stops.set(row.studyId, { ...row, auditedAt: null });
  }

  /** The committed rows, for a spec's assertions. */
  get studyRows(): StudyEntity[] {
    return [...this.committed.studies.values()].map(copyOf);
  }

  get versionRows(): StudyPlanVersionEntity[] {
    return [...this.committed.versions.values()].map(copyOf);
  }

  get decisionRows(): StudyDecisionEntity[] {
    return [...this.committed.decisions.values()].map(copyOf);
  }

  get draftRows(): StudyDraftEntity[] {
    return [...this.committed.drafts.values()].map(copyOf);
  }

  get stopRows(): LegacyStopRow[] {
    return [...this.committed.stops.values()].map((r) => ({ ...r }));
  }

  private async transaction<T>(
    work: (writes: Writes, lock: (key: string) => Promise<void>, id: number, releases: (() => void)[]) => Promise<T>,
  ): Promise<T> {
    const id = ++this.transactions;
    const writes = emptyWrites();
    const releases: (() => void)[] = [];
    const lock = async (key: string) => {
      releases.push(await this.locks.acquire(key));
      this.lockLog.push(key);
    };
    try {
      const result = await this.context.run(id, () => work(writes, lock, id, releases));
      for (const key of writes.versions.keys()) {
        if (this.committed.versions.has(key)) throw new UniqueViolation('study_plan_versions_pkey');
      }
      this.committed = this.merged(writes);
      this.committedIds.add(id);
      return result;
    } finally {
      for (const release of releases) release();
    }
  }

  private studiesWork(writes: Writes, lock: (key: string) => Promise<void>, id: number): StudiesUnitOfWork {
    const view = () => this.merged(writes);
    const handle: TransactionHandle = Object.freeze({ inMemoryTransaction: id });
    return {
      transaction: handle as unknown as OpenTransaction,
      lockStudy: async (studyId) => {
        await lock(`study:${studyId}`);
        return this.read(view().studies, studyId);
      },
      insertStudy: (fields) => {
        const study = this.newStudy(fields);
        writes.studies.set(study.id, study);
        return Promise.resolve(copyOf(study));
      },
      updateStudy: (studyId, change) => {
        const before = writes.studyChanges.get(studyId) ?? {};
        writes.studyChanges.set(studyId, { ...before, ...change, updatedAt: new Date() });
        return Promise.resolve();
      },
      insertPlanVersion: (row) => {
        const key = versionKey(row.studyId, row.version);
        if (view().versions.has(key)) throw new UniqueViolation('study_plan_versions_pkey');
        writes.versions.set(key, Object.assign(new StudyPlanVersionEntity(), { ...row, createdAt: this.created() }));
        return Promise.resolve();
      },
      currentDecisions: (plan) => Promise.resolve(decisionsOn(view(), [plan])),
      suspendedSilos: (siloIds) =>
        Promise.resolve(
          [...this.silosById.values()].filter((s) => siloIds.includes(s.id) && s.status === 'suspended').map(copyOf),
        ),
      insertDecision: (row) => {
        const decision = Object.assign(new StudyDecisionEntity(), { id: randomUUID(), ...row });
        writes.decisions.set(decision.id, decision);
        return Promise.resolve();
      },
    };
  }

  private draftsWork(writes: Writes): StudyDraftsUnitOfWork {
    const view = () => this.merged(writes);
    return {
      findStudy: (studyId) => Promise.resolve(this.read(view().studies, studyId)),
      insertDraft: (fields) => {
        const at = this.created();
        const draft = Object.assign(new StudyDraftEntity(), {
          id: randomUUID(),
          ...fields,
          createdAt: at,
          updatedAt: at,
        });
        writes.drafts.set(draft.id, draft);
        return Promise.resolve(copyOf(draft));
      },
      findDraft: (draftId, createdBy) => Promise.resolve(ownDraft(view(), draftId, createdBy)),
      saveDraft: (draft) => {
        const { title, form, step, studyId } = draft;
        writes.draftChanges.set(draft.id, { title, form, step, studyId, updatedAt: this.created() });
        return Promise.resolve();
      },
      deleteDraft: (draftId) => {
        writes.deletedDrafts.add(draftId);
        return Promise.resolve();
      },
    };
  }

  private stopsWork(writes: Writes, releases: (() => void)[]): LegacyPlanStopsUnitOfWork {
    return {
      claimUnaudited: () => {
        const rows = [...this.merged(writes).stops.values()]
          .filter((r) => r.auditedAt === null && !this.heldStops.has(r.studyId))
          .sort((a, b) => a.stoppedAt.getTime() - b.stoppedAt.getTime() || a.studyId.localeCompare(b.studyId));
        for (const row of rows) {
          this.heldStops.add(row.studyId);
          releases.push(() => this.heldStops.delete(row.studyId));
        }
        return Promise.resolve(rows.map(({ auditedAt: _unused, ...stop }) => ({ ...stop })));
      },
      markAudited: (studyId) => {
        writes.stopsAudited.set(studyId, new Date());
        return Promise.resolve();
      },
    };
  }

  /** The committed tables with a transaction's writes applied (what its next statement sees). */
  private merged(writes: Writes): Tables {
    const studies = new Map([...this.committed.studies, ...writes.studies]);
    for (const [id, change] of writes.studyChanges) {
      const row = studies.get(id);
      if (row) studies.set(id, Object.assign(copyOf(row), change));
    }
    const drafts = new Map([...this.committed.drafts, ...writes.drafts]);
    for (const [id, change] of writes.draftChanges) {
      const row = drafts.get(id);
      if (row) drafts.set(id, Object.assign(copyOf(row), change));
    }
    for (const id of writes.deletedDrafts) drafts.delete(id);
    const stops = new Map(this.committed.stops);
    for (const [id, at] of writes.stopsAudited) {
      const row = stops.get(id);
      if (row) stops.set(id, { ...row, auditedAt: at });
    }
    return {
      studies,
      versions: new Map([...this.committed.versions, ...writes.versions]),
      decisions: new Map([...this.committed.decisions, ...writes.decisions]),
      drafts,
      stops,
    };
  }

  private read<T extends object>(rows: Map<string, T>, key: string): T | null {
    const row = rows.get(key);
    return row ? copyOf(row) : null;
  }

  /** A strictly increasing clock, so "newest first" is well defined within one millisecond. */
  private created(): Date {
    this.lastCreated = Math.max(this.lastCreated + 1, Date.now());
    return new Date(this.lastCreated);
  }

  private newStudy(fields: Parameters<StudiesUnitOfWork['insertStudy']>[0] & Partial<StudyEntity>): StudyEntity {
    const at = this.created();
    return Object.assign(new StudyEntity(), {
      id: randomUUID(),
      currentModelHash: null,
      optimizerStateHash: null,
      controlVariateHash: null,
      endReason: null,
      startedAt: null,
      endedAt: null,
      pausedAt: null,
      pauseReason: null,
      pausedNextRound: null,
      archivedAt: null,
      createdAt: at,
      updatedAt: at,
      ...fields,
    });
  }
}

function decisionsOn(tables: Tables, plans: CurrentPlan[]): StudyDecisionEntity[] {
  const rows = [...tables.decisions.values()].filter((d) =>
    plans.some((p) => d.studyId === p.id && d.planVersion === p.planVersion && d.planHash === p.planHash),
  );
  return rows.sort(byTime((d) => d.decidedAt)).map(copyOf);
}

function ownDraft(tables: Tables, id: string, createdBy: string): StudyDraftEntity | null {
  const draft = tables.drafts.get(id);
  return draft && draft.createdBy === createdBy ? copyOf(draft) : null;
}
