import { createHash } from 'node:crypto';
import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { AuditTrail, type AuditActor, type AuditEvent } from '../audit/audit-trail';
import { IntervalTask } from '../audit/interval-task.util';
import {
  SiloRefusalsRepository,
  type RefusalAction,
  type RefusalKey,
  type RefusalRow,
  type RefusalsUnitOfWork,
} from './silo-refusals.repository';

/**
 * One audit record per refused identity and reason per interval, in ms. A revoked silo that keeps calling (or a
 * stolen key hammering the renewal route) then adds at most one record a minute to the hash chain, instead of one
 * per request, while every refusal is still counted.
 */
export const REFUSAL_RECORD_INTERVAL_MS = 60_000;
/** Distinct remote addresses kept per aggregated record (the first ones seen); the count covers every refusal. */
export const REFUSAL_MAX_ADDRESSES = 8;

export type { RefusalAction };

/** A request refused on the silo listener, for the audit trail. */
export interface Refusal {
  action: RefusalAction;
  actor: AuditActor;
  /** The client certificate's SHA-256 fingerprint: the identity refusals are aggregated by (with the reason). */
  fingerprintSha256: string;
  reason: string;
  remoteAddress?: string;
  subject?: AuditEvent['subject'];
  /** A short machine-readable kind of refusal (e.g. 'pending'), kept in the record. */
  kind?: string;
}

function keyOf(refusal: Refusal): RefusalKey {
  const reasonSha256 = createHash('sha256').update(`${refusal.action}\n${refusal.reason}`, 'utf8').digest('hex');
  return { fingerprintSha256: refusal.fingerprintSha256, reasonSha256 };
}

/**
 * Writes refusals to the audit trail, aggregated (issue 14 item 2): the first refusal of an identity for a reason is
 * recorded at once; repeats within REFUSAL_RECORD_INTERVAL_MS are only counted, in the `silo_identity_refusals`
 * table, and become one record with `count`, `firstAt` and `lastAt` at the next refusal after the interval, at the
 * periodic flush, or when the hub stops. The count lives in the database and is cleared in the same transaction
 * that appends its record, so a crash loses no count and none is recorded twice; counts left by a crash are recorded
 * by the next periodic flush.
 */
@Injectable()
export class RefusalRecorder implements OnModuleInit, OnModuleDestroy {
  private readonly schedule: IntervalTask;

  constructor(
    private readonly store: SiloRefusalsRepository,
    private readonly audit: AuditTrail,
    @InjectPinoLogger('SiloRefusals') private readonly logger: PinoLogger,
  ) {
    this.schedule = new IntervalTask(
      REFUSAL_RECORD_INTERVAL_MS,
      () => this.flush(),
      (err) => this.logger.error({ err }, 'recording aggregated silo refusals failed'),
    );
  }

  onModuleInit(): void {
    this.schedule.start();
  }

  /** Before the database closes: every pending count becomes a record. */
  async onModuleDestroy(): Promise<void> {
    await this.schedule.stop();
    await this.flush({ all: true });
  }

  async record(refusal: Refusal, now = new Date()): Promise<void> {
    const key = keyOf(refusal);
    await this.store.inTransaction(async (tx) => {
      await tx.ensureRow(key, refusal);
      const row = await tx.lock(key);
      if (!row) throw new Error('the refusal row vanished under its lock');
      const due =
        row.lastRecordedAt === null || now.getTime() - row.lastRecordedAt.getTime() >= REFUSAL_RECORD_INTERVAL_MS;
      if (due) {
        await this.append(
          tx,
          { ...row, ...this.latest(refusal) },
          { count: 1, at: now, remoteAddress: refusal.remoteAddress },
        );
        return;
      }
      await tx.countPending(
        key,
        { at: now, remoteAddress: refusal.remoteAddress ?? null, maxAddresses: REFUSAL_MAX_ADDRESSES },
        this.latest(refusal),
      );
    });
  }

  /**
   * Records the pending counts whose interval has ended (or every pending count, with `all`). Returns how many
   * records were appended.
   */
  async flush(options: { all?: boolean } = {}, now = new Date()): Promise<number> {
    const cutoff = options.all ? now : new Date(now.getTime() - REFUSAL_RECORD_INTERVAL_MS);
    const keys = await this.store.dueKeys(cutoff);
    let appended = 0;
    for (const key of keys) {
      appended += await this.store.inTransaction(async (tx) => {
        const row = await tx.lock(key);
        // Another replica (or a refusal in between) may have recorded it already.
        if (!row || row.pendingCount === 0) return 0;
        await this.append(tx, row, { count: 0, at: now });
        return 1;
      });
    }
    return appended;
  }

  private latest(refusal: Refusal): Pick<RefusalRow, 'actor' | 'subject' | 'kind'> {
    return { actor: refusal.actor, subject: refusal.subject ?? null, kind: refusal.kind ?? null };
  }

  /**
   * One audit record for the row's pending refusals plus `current` (the refusal being handled, if any), then the
   * row's pending state cleared: in one transaction, so the count is recorded exactly once.
   */
  private async append(
    tx: RefusalsUnitOfWork,
    row: RefusalRow,
    current: { count: 0 | 1; at: Date; remoteAddress?: string },
  ): Promise<void> {
    const addresses = [...row.pendingRemoteAddresses];
    if (current.remoteAddress !== undefined && !addresses.includes(current.remoteAddress)) {
      if (addresses.length < REFUSAL_MAX_ADDRESSES) addresses.push(current.remoteAddress);
    }
    const count = row.pendingCount + current.count;
    const firstAt = row.pendingFirstAt ?? current.at;
    const lastAt = current.count === 1 ? current.at : (row.pendingLastAt ?? current.at);
    // Joins this transaction (AuditTrail records inside an open hub transaction on its connection).
    await this.audit.record({
      actor: row.actor,
      action: row.action,
      ...(row.subject ? { subject: row.subject } : {}),
      details: {
        fingerprintSha256: row.fingerprintSha256,
        reason: row.reason,
        ...(row.kind ? { kind: row.kind } : {}),
        count,
        firstAt: firstAt.toISOString(),
        lastAt: lastAt.toISOString(),
        remoteAddresses: addresses,
      },
    });
    await tx.clearPending(row, current.at);
  }
}
