import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { SecAggStageName } from '@tessera/protocol';
import {
  unmaskingProgress,
  type MaskedInputHeader,
  type ParticipantExclusion,
  type ShareKeysMessage,
  type UnmaskingResponse,
} from '@tessera/secagg';
import { AuditTrail, SYSTEM_ACTOR } from '../audit/audit-trail';
import type { SecAggSessionEntity } from './secagg-session.entity';
import { isUuid, lockedSession, silentAt } from './secagg-session-rules.util';
import { closeAdvertise, closeShare, closeUpload } from './secagg-stage.util';
import { SecAggRepository, type SecAggStore } from './secagg.repository';

/**
 * The stages of a secure-aggregation session (issue 16, items 2 and 3): a stage closes, under the session's row lock,
 * when every silo that could still take part has sent its message or the stage's deadline has passed. Stages advance
 * lazily, on the next request or tick after the condition holds, so nothing depends on a timer surviving a restart.
 */
@Injectable()
export class SecAggStageMachine implements OnModuleDestroy {
  /** Long polls of a round's stage views (SecAggSessionsService.waitFor), woken when this hub moves its stage. */
  private readonly watchers = new Map<string, Set<() => void>>();
  /** Set when the hub stops: held stage views answer at once, so a shutdown does not wait out their waits. */
  private stopping = false;

  constructor(
    private readonly repository: SecAggRepository,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
  ) {}

  /**
   * Closes every stage whose condition holds (all possible senders answered, or its deadline passed), each in its
   * own transaction under the session's row lock, with its audit records. Returns the session as it then stands.
   */
  async advance(roundId: string, now = new Date()): Promise<SecAggSessionEntity> {
    let moves = 0;
    for (;;) {
      const settled = await this.repository.inTransaction(async (tx) => {
        const session = await lockedSession(tx, roundId);
        return (await this.closeStageIfDue(tx, session, now)) ? null : session;
      });
      if (settled) {
        // Committed: the round's waiting stage views read the session again now.
        if (moves > 0) this.wakeWatchers(roundId);
        return settled;
      }
      moves += 1;
    }
  }

  /**
   * Resolves once this hub has moved the round's stage (advance committed a close), or after `ms` at most: a stage
   * moved by another hub replica, or closed by its deadline, is seen when the caller reads the session again.
   */
  nextMove(roundId: string, ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      let watchers = this.watchers.get(roundId);
      if (!watchers) this.watchers.set(roundId, (watchers = new Set()));
      const set = watchers;
      const done = (): void => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.watchers.get(roundId) === set) this.watchers.delete(roundId);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      set.add(done);
    });
  }

  /** Whether the hub is stopping (a held stage view then answers with the view as it stands). */
  get stopped(): boolean {
    return this.stopping;
  }

  onModuleDestroy(): void {
    this.stopping = true;
    for (const roundId of [...this.watchers.keys()]) this.wakeWatchers(roundId);
  }

  private wakeWatchers(roundId: string): void {
    for (const wake of [...(this.watchers.get(roundId) ?? [])]) wake();
  }

  /** Records silos set aside (one audit record each) and keeps them in the session, in the caller's transaction. */
  async exclude(tx: SecAggStore, session: SecAggSessionEntity, exclusions: ParticipantExclusion[]): Promise<void> {
    if (exclusions.length === 0) return;
    const all = [...session.exclusions, ...exclusions];
    await tx.updateSession(session.roundId, { exclusions: all });
    session.exclusions = all;
    for (const e of exclusions) {
      const known = session.config.participants.includes(e.participantId);
      await this.audit.record({
        actor: SYSTEM_ACTOR,
        action: 'secagg.participant.excluded',
        subject: { roundId: session.roundId, ...(known && isUuid(e.participantId) ? { siloId: e.participantId } : {}) },
        details: { participantId: e.participantId, stage: e.stage, reason: e.reason, detail: e.detail },
      });
    }
  }

  private async closeStageIfDue(tx: SecAggStore, session: SecAggSessionEntity, now: Date): Promise<boolean> {
    const { config } = session;
    switch (session.stage) {
      case 'advertise': {
        const submitted = await tx.messages(session.roundId, 'advertise');
        if (submitted.length < config.participants.length && now < session.advertiseUntil) return false;
        const keys = await tx.identityCertificates(submitted.map((m) => m.siloId));
        const { outcome, exclusions } = closeAdvertise(
          config,
          submitted.map((m) => m.body),
          keys,
        );
        await this.exclude(tx, session, exclusions);
        const silent = silentAt(config.participants, submitted);
        if (!outcome.ok) return this.fail(tx, session, 'advertise', outcome.failure, silent);
        session.advertised = outcome.value;
        return this.moveTo(
          tx,
          session,
          'share',
          { advertised: outcome.value },
          { accepted: outcome.value.map((a) => a.participantId), silent },
        );
      }
      case 'share': {
        const messages = await tx.messages(session.roundId, 'share');
        const expected = (session.advertised ?? []).length;
        if (messages.length < expected && now < session.shareUntil) return false;
        const outcome = closeShare(
          config,
          messages.map((m) => m.body as unknown as ShareKeysMessage),
        );
        const silent = silentAt(
          (session.advertised ?? []).map((a) => a.participantId),
          messages,
        );
        if (!outcome.ok) return this.fail(tx, session, 'share', outcome.failure, silent);
        return this.moveTo(
          tx,
          session,
          'upload',
          { routing: outcome.value },
          { sharers: outcome.value.sharers.map((s) => s.participantId), silent },
        );
      }
      case 'upload': {
        const headers = await tx.messages(session.roundId, 'upload');
        const expected = session.routing?.sharers.length ?? 0;
        if (headers.length < expected && now < session.uploadUntil) return false;
        const routing = session.routing;
        if (!routing) return this.fail(tx, session, 'upload', 'The share routing is missing.');
        const outcome = closeUpload(
          config,
          routing,
          headers.map((m) => m.body as unknown as MaskedInputHeader),
        );
        const silent = silentAt(
          routing.sharers.map((s) => s.participantId),
          headers,
        );
        if (!outcome.ok) return this.fail(tx, session, 'upload', outcome.failure, silent);
        return this.moveTo(
          tx,
          session,
          'unmask',
          { unmaskingPlan: outcome.value },
          { survivors: outcome.value.request.survivors, dropped: outcome.value.request.dropped, silent },
        );
      }
      case 'unmask': {
        const plan = session.unmaskingPlan;
        if (!plan) return this.fail(tx, session, 'unmask', 'The unmasking plan is missing.');
        const responses = await tx.messages(session.roundId, 'unmask');
        const progress = unmaskingProgress(
          plan,
          responses.map((m) => m.body as unknown as UnmaskingResponse),
        );
        const silent = silentAt(plan.request.survivors, responses);
        if (progress.ready) {
          // The survivors' inputs are in the sum that can now be unmasked: they reported, for the round's close.
          await tx.markReported(session.roundId, plan.request.survivors, now);
          return this.moveTo(tx, session, 'complete', {}, { responders: responses.map((m) => m.siloId), silent });
        }
        if (now < session.unmaskUntil) return false;
        const short = progress.missing.map((m) => `${m.owner}'s ${m.kind}: ${m.have} of ${m.need}`).join('; ');
        return this.fail(tx, session, 'unmask', `INSUFFICIENT_SHARES: too few survivors answered (${short}).`, silent);
      }
      case 'complete':
      case 'failed':
        return false;
    }
  }

  private async moveTo(
    tx: SecAggStore,
    session: SecAggSessionEntity,
    stage: SecAggStageName,
    changes: Partial<Pick<SecAggSessionEntity, 'advertised' | 'routing' | 'unmaskingPlan'>>,
    details: Record<string, unknown>,
  ): Promise<boolean> {
    const closed = session.stage;
    await tx.updateSession(session.roundId, { ...changes, stage });
    await this.audit.record({
      actor: SYSTEM_ACTOR,
      action: 'secagg.stage.closed',
      subject: { roundId: session.roundId },
      details: { stage: closed, next: stage, configHash: session.configHash, ...details },
    });
    return true;
  }

  private async fail(
    tx: SecAggStore,
    session: SecAggSessionEntity,
    stage: string,
    failure: string,
    /** Who could have sent at this stage and did not: the dropouts that failed it. */
    silent: string[] = [],
  ): Promise<boolean> {
    await tx.updateSession(session.roundId, { stage: 'failed', failure });
    await this.audit.record({
      actor: SYSTEM_ACTOR,
      action: 'secagg.session.failed',
      subject: { roundId: session.roundId },
      details: { stage, failure, configHash: session.configHash, silent },
    });
    return true;
  }
}
