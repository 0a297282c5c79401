import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import {
  buildBundle,
  RECORDED_STATE_FORMAT,
  type AuditBundle,
  type JsonObject,
  type RecordedState,
  type StateItem,
} from '@tessera/audit';
import { Between, DataSource, LessThan, LessThanOrEqual } from 'typeorm';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { AuditCheckpointEntity, toCheckpoint } from './audit-checkpoint.entity';
import { AuditCheckpointService } from './audit-checkpoint.service';
import { AuditRecordEntity, toAuditRecord } from './audit-record.entity';
import { AuditSigningKeyService } from './audit-signing-key.service';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface AuditBundleFilter {
  /** Start the segment at the last checkpoint before this study's first record (else: at genesis). */
  studyId?: string;
}

/** The chain head a bundle covers: its last record. */
export interface ChainHead {
  seq: number;
  hash: string;
}

/** Records of a study that a later report at an earlier head may ignore: they change none of the study's state. */
const STATE_NEUTRAL_ACTIONS = ['report.exported'];

/**
 * Signed report bundles (`tessera.audit-bundle/1`, docs/audit-format.md) that auditors verify offline with
 * `tessera-verify`. The study compliance report is built on this: it supplies the study summary.
 */
@Injectable()
export class AuditExportService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly checkpoints: AuditCheckpointService,
    private readonly keys: AuditSigningKeyService,
  ) {}

  /**
   * A bundle of the chain up to a head. Without `upTo`, the head is a fresh checkpoint of the current head; with it,
   * the record at `upTo` (its stored checkpoint when there is one, else one signed now), so two downloads can cover
   * the same head although each download appends its own `report.exported` record. Without a study, or when the
   * study's first record precedes every checkpoint, the segment starts at genesis (it then proves completeness from
   * the first record); otherwise it starts just after the last checkpoint before the study's first record, which
   * anchors it. `study` is the summary the report carries, opaque here, or a function making it for the head.
   * Refuses (BundleBuildError) to sign a chain that does not verify, and (CONFLICT) an `upTo` behind a change of the
   * study's state: the hub's state is read now, and a bundle must hold every record of it.
   */
  async exportBundle(
    filter: AuditBundleFilter,
    study: JsonObject | ((head: ChainHead) => Promise<JsonObject>) = {},
    upTo?: number,
  ): Promise<AuditBundle> {
    let head: ChainHead;
    let recordedState: RecordedState;
    if (upTo === undefined) {
      // The state BEFORE the head: every record commits with its state change, so each change read here has its
      // record at or below a head taken afterwards; a change without one fails verification (STATE_UNRECORDED).
      recordedState = await this.recordedState(filter);
      const checkpoint = await this.checkpoints.checkpointNow();
      head = { seq: checkpoint.seq, hash: checkpoint.headHash };
    } else {
      head = await this.headAt(upTo);
      recordedState = await this.recordedState(filter);
      // Read after the state: a change read above has its record committed, so it is found here if it lies beyond.
      await this.refuseStateBeyond(filter, head);
    }
    const summary = typeof study === 'function' ? await study(head) : study;
    const key = await this.keys.signingKey();
    const fromSeq = await this.segmentStart(filter, head.seq, key.keyId);
    const records = await this.db.getRepository(AuditRecordEntity).find({
      where: { seq: Between(fromSeq, head.seq) },
      order: { seq: 'ASC' },
    });
    const checkpoints = await this.db.getRepository(AuditCheckpointEntity).find({
      where: { seq: Between(fromSeq - 1, head.seq), keyId: key.keyId },
      order: { seq: 'ASC' },
    });
    return buildBundle({
      records: records.map(toAuditRecord),
      checkpoints: checkpoints.map(toCheckpoint),
      study: { ...summary, recordedState: recordedState as unknown as JsonObject },
      signingKey: key.privateKey,
    });
  }

  /** The record at `seq`, which a report may name as its head; a clear 400 when the chain does not reach it. */
  async headAt(seq: number): Promise<ChainHead> {
    const row = await this.db.getRepository(AuditRecordEntity).findOne({ where: { seq }, select: ['seq', 'hash'] });
    if (row) return { seq: row.seq, hash: row.hash };
    // An aggregate without GROUP BY answers exactly one row, also on an empty table (head null).
    const [{ head }] = (await this.db.query('SELECT max("seq") AS "head" FROM "audit_records"')) as [
      { head: string | null },
    ];
    throw new HubException(
      HubErrorCode.VALIDATION_FAILED,
      `upTo ${seq} is not in the audit chain, whose head is #${head === null ? 0 : Number(head)}.`,
    );
  }

  /** CONFLICT when the study has a state-changing record after the head (a later round, a charge, its end). */
  private async refuseStateBeyond(filter: AuditBundleFilter, head: ChainHead): Promise<void> {
    if (filter.studyId === undefined || !UUID.test(filter.studyId)) {
      // The whole hub's state: any record after the head but an export may stand for a change.
      const later = (await this.db.query(
        'SELECT seq, action FROM audit_records WHERE seq > $1 AND action <> ALL($2) ORDER BY seq LIMIT 1',
        [head.seq, STATE_NEUTRAL_ACTIONS],
      )) as { seq: string; action: string }[];
      if (later[0]) this.refuse(head, later[0]);
      return;
    }
    const later = (await this.db.query(
      `SELECT seq, action FROM audit_records WHERE study_id = $1 AND seq > $2 AND action <> ALL($3)
        ORDER BY seq LIMIT 1`,
      [filter.studyId, head.seq, STATE_NEUTRAL_ACTIONS],
    )) as { seq: string; action: string }[];
    if (later[0]) this.refuse(head, later[0]);
  }

  private refuse(head: ChainHead, later: { seq: string; action: string }): never {
    throw new HubException(
      HubErrorCode.CONFLICT,
      `The study changed after #${head.seq} (record #${Number(later.seq)}, ${later.action}): a report up to #${head.seq} ` +
        'could not hold every record of its current state. Download it at the current head (without upTo).',
    );
  }

  /**
   * The hub's state changes that each must have an audit record (docs/audit-format.md, "Recorded state"), read from
   * the state tables (never from the log): accepted updates, evaluations, failure reports, privacy charges, round
   * openings and closes, and study ends; of one study when the filter names one.
   */
  async recordedState(filter: AuditBundleFilter): Promise<RecordedState> {
    const scoped = filter.studyId !== undefined && UUID.test(filter.studyId);
    const where = scoped ? 'AND r.study_id = $1' : '';
    const args = scoped ? [filter.studyId] : [];
    const items: StateItem[] = [];
    const participants = (await this.db.query(
      `SELECT r.study_id, p.silo_id, r.number, r.attempt, p.status, p.update_hash
         FROM round_participants p JOIN rounds r ON r.id = p.round_id
        WHERE p.status IN ('uploaded', 'evaluated', 'failed') ${where}
        ORDER BY r.opened_at, p.silo_id`,
      args,
    )) as {
      study_id: string;
      silo_id: string;
      number: number;
      attempt: number;
      status: string;
      update_hash: string | null;
    }[];
    for (const p of participants) {
      const ids = { studyId: p.study_id, siloId: p.silo_id, round: p.number, attempt: p.attempt };
      if (p.status === 'uploaded' && p.update_hash !== null) {
        items.push({ kind: 'update.accepted', ...ids, updateSha256: p.update_hash.trim() });
      } else if (p.status === 'evaluated') {
        items.push({ kind: 'evaluation.reported', ...ids });
      } else if (p.status === 'failed') {
        items.push({ kind: 'silo.failed', ...ids });
      }
    }
    // Charges made when tasks were issued (rows of older hubs, charged on acceptance, were recorded differently).
    const charges = (await this.db.query(
      `SELECT r.study_id, r.silo_id, r.round AS number, r.attempt, r.kind
         FROM privacy_ledger r WHERE r.charged_on = 'issued' ${where}
        ORDER BY r.created_at, r.silo_id`,
      args,
    )) as { study_id: string; silo_id: string; number: number; attempt: number; kind: 'train' | 'evaluate' }[];
    for (const c of charges) {
      items.push({
        kind: 'privacy.charged',
        studyId: c.study_id,
        siloId: c.silo_id,
        round: c.number,
        attempt: c.attempt,
        task: c.kind,
      });
    }
    const rounds = (await this.db.query(
      `SELECT r.study_id, r.number, r.attempt, r.status FROM rounds r WHERE true ${where} ORDER BY r.opened_at`,
      args,
    )) as { study_id: string; number: number; attempt: number; status: string }[];
    for (const r of rounds) {
      const ids = { studyId: r.study_id, round: r.number, attempt: r.attempt };
      // Round 1 opens with the study's start; later first attempts with the previous round's close.
      if (r.number > 1 && r.attempt === 1) items.push({ kind: 'round.opened', ...ids });
      if (r.status === 'closed') items.push({ kind: 'round.closed', ...ids });
    }
    const studies = (await this.db.query(
      `SELECT r.id AS study_id, r.status FROM studies r
        WHERE r.status IN ('completed', 'failed', 'stopped') ${scoped ? 'AND r.id = $1' : ''}`,
      args,
    )) as { study_id: string; status: 'completed' | 'failed' | 'stopped' }[];
    for (const st of studies) items.push({ kind: 'study.ended', studyId: st.study_id, status: st.status });
    return { format: RECORDED_STATE_FORMAT, items };
  }

  private async segmentStart(filter: AuditBundleFilter, headSeq: number, keyId: string): Promise<number> {
    if (filter.studyId === undefined || !UUID.test(filter.studyId)) return 1;
    const first = await this.db.getRepository(AuditRecordEntity).findOne({
      where: { studyId: filter.studyId, seq: LessThanOrEqual(headSeq) },
      order: { seq: 'ASC' },
    });
    if (!first) return 1;
    const anchor = await this.db.getRepository(AuditCheckpointEntity).findOne({
      where: { seq: LessThan(first.seq), keyId },
      order: { seq: 'DESC' },
    });
    return anchor ? anchor.seq + 1 : 1;
  }
}
