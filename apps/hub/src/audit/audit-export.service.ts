import { Injectable } from '@nestjs/common';
import {
  buildBundle,
  RECORDED_STATE_FORMAT,
  type AuditBundle,
  type JsonObject,
  type RecordedState,
  type StateItem,
} from '@tessera/audit';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { AuditCheckpointRepository } from './audit-checkpoint.repository';
import { AuditCheckpointService } from './audit-checkpoint.service';
import { AuditSigningKeyService } from './audit-signing-key.service';
import { AuditRepository, type LaterRecord } from './audit.repository';

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

/** The filter's study; an id that is no uuid names none (the whole hub's chain and state). */
function studyOf(filter: AuditBundleFilter): string | undefined {
  return filter.studyId !== undefined && UUID.test(filter.studyId) ? filter.studyId : undefined;
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
    private readonly chain: AuditRepository,
    private readonly stored: AuditCheckpointRepository,
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
    const records = await this.chain.segment(fromSeq, head.seq);
    const checkpoints = await this.stored.between(fromSeq - 1, head.seq, key.keyId);
    return buildBundle({
      records,
      checkpoints,
      study: { ...summary, recordedState: recordedState as unknown as JsonObject },
      signingKey: key.privateKey,
    });
  }

  /** The record at `seq`, which a report may name as its head; a clear 400 when the chain does not reach it. */
  async headAt(seq: number): Promise<ChainHead> {
    const link = await this.chain.linkAt(seq);
    if (link) return link;
    const head = await this.chain.headSeq();
    throw new HubException(
      HubErrorCode.VALIDATION_FAILED,
      `upTo ${seq} is not in the audit chain, whose head is #${head}.`,
    );
  }

  /** CONFLICT when the study has a state-changing record after the head (a later round, a charge, its end). */
  private async refuseStateBeyond(filter: AuditBundleFilter, head: ChainHead): Promise<void> {
    // Without a study, the whole hub's state: any record after the head but an export may stand for a change.
    const later = await this.chain.firstLaterRecord(head.seq, STATE_NEUTRAL_ACTIONS, studyOf(filter));
    if (later) this.refuse(head, later);
  }

  private refuse(head: ChainHead, later: LaterRecord): never {
    throw new HubException(
      HubErrorCode.CONFLICT,
      `The study changed after #${head.seq} (record #${later.seq}, ${later.action}): a report up to #${head.seq} ` +
        'could not hold every record of its current state. Download it at the current head (without upTo).',
    );
  }

  /**
   * The hub's state changes that each must have an audit record (docs/audit-format.md, "Recorded state"), read from
   * the state tables (never from the log): accepted updates, evaluations, failure reports, privacy charges, round
   * openings and closes, and study ends; of one study when the filter names one.
   */
  async recordedState(filter: AuditBundleFilter): Promise<RecordedState> {
    const studyId = studyOf(filter);
    const items: StateItem[] = [];
    for (const p of await this.chain.settledParticipations(studyId)) {
      const ids = { studyId: p.studyId, siloId: p.siloId, round: p.round, attempt: p.attempt };
      if (p.status === 'uploaded' && p.updateHash !== null) {
        items.push({ kind: 'update.accepted', ...ids, updateSha256: p.updateHash.trim() });
      } else if (p.status === 'evaluated') {
        items.push({ kind: 'evaluation.reported', ...ids });
      } else if (p.status === 'failed') {
        items.push({ kind: 'silo.failed', ...ids });
      }
    }
    // Charges made when tasks were issued (rows of older hubs, charged on acceptance, were recorded differently).
    for (const c of await this.chain.issuedCharges(studyId)) {
      items.push({
        kind: 'privacy.charged',
        studyId: c.studyId,
        siloId: c.siloId,
        round: c.round,
        attempt: c.attempt,
        task: c.kind,
      });
    }
    for (const r of await this.chain.rounds(studyId)) {
      const ids = { studyId: r.studyId, round: r.round, attempt: r.attempt };
      // Round 1 opens with the study's start; later first attempts with the previous round's close.
      if (r.round > 1 && r.attempt === 1) items.push({ kind: 'round.opened', ...ids });
      if (r.status === 'closed') items.push({ kind: 'round.closed', ...ids });
    }
    for (const st of await this.chain.endedStudies(studyId)) {
      items.push({ kind: 'study.ended', studyId: st.studyId, status: st.status });
    }
    return { format: RECORDED_STATE_FORMAT, items };
  }

  private async segmentStart(filter: AuditBundleFilter, headSeq: number, keyId: string): Promise<number> {
    const studyId = studyOf(filter);
    if (studyId === undefined) return 1;
    const first = await this.chain.firstStudySeq(studyId, headSeq);
    if (first === null) return 1;
    const anchor = await this.stored.lastBefore(first, keyId);
    return anchor ? anchor.seq + 1 : 1;
  }
}
