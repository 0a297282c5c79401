import { Inject, Injectable } from '@nestjs/common';
import { decodeMaskedInputFrame, type SecAggReceipt } from '@tessera/protocol';
import {
  checkMaskedInput,
  checkShareMessage,
  checkUnmaskingResponse,
  decodeMaskedVector,
  encodeMaskedVector,
  MaskedSumAccumulator,
  SecAggException,
} from '@tessera/secagg';
import { canonicalJson } from '@tessera/canonical';
import { AuditTrail } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { faultPoint } from '../faults/fault-point.util';
import { SecAggMessageEntity, type SecAggMessageStage } from './secagg-message.entity';
import type { SecAggSessionEntity } from './secagg-session.entity';
import {
  assertNotFailed,
  assertParticipant,
  isObject,
  lockedSession,
  refusal,
  type Accepted,
  type Refused,
} from './secagg-session-rules.util';
import { SecAggStageMachine } from './secagg-stage-machine.service';
import { SecAggRepository, type SecAggStore } from './secagg.repository';

/**
 * What silos send at each stage of secure aggregation: every message is checked with @tessera/secagg and stored with
 * its audit record in one transaction, under the session's row lock. The masked input of a silo is added to the
 * persisted running sum in the transaction that accepts it and never stored.
 */
@Injectable()
export class SecAggMessagesService {
  constructor(
    private readonly repository: SecAggRepository,
    private readonly stages: SecAggStageMachine,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
  ) {}

  /* ---------- stage 0: advertise keys ---------- */

  /** Stores a silo's key advertisement; it is checked (signature included) when the stage closes. */
  async advertise(roundId: string, siloId: string, body: unknown, now = new Date()): Promise<SecAggReceipt> {
    return this.accept(roundId, siloId, 'advertise', now, body, (_tx, session) => {
      assertParticipant(session, siloId);
      if (!isObject(body) || body.participantId !== siloId) {
        throw new HubException(HubErrorCode.UPDATE_MALFORMED, 'An advertisement names its sender as participantId.');
      }
      return { body, details: { configHash: session.configHash } };
    });
  }

  /* ---------- stage 1: share keys ---------- */

  /** Checks and stores a silo's share message (its shares stay encrypted to their recipients). */
  async share(roundId: string, siloId: string, body: unknown, now = new Date()): Promise<SecAggReceipt> {
    return this.accept(roundId, siloId, 'share', now, body, (_tx, session) => {
      const checked = checkShareMessage(session.config, session.advertised ?? [], body);
      if (!checked.ok || checked.value.participantId !== siloId) return refusal(checked, siloId, 'share');
      return { body: { ...checked.value }, details: { recipients: checked.value.shares.length } };
    });
  }

  /* ---------- stage 2: masked input ---------- */

  /**
   * Checks a masked-input frame and adds its vector to the round's running sum in the transaction that stores the
   * header: the individual masked vector is never written anywhere.
   */
  async maskedInput(roundId: string, siloId: string, frame: Uint8Array, now = new Date()): Promise<SecAggReceipt> {
    let decoded: { header: unknown; packedVector: Uint8Array };
    try {
      decoded = decodeMaskedInputFrame(frame);
    } catch (error) {
      throw new HubException(HubErrorCode.UPDATE_MALFORMED, (error as Error).message);
    }
    return this.accept(roundId, siloId, 'upload', now, decoded.header, async (tx, session) => {
      const { config } = session;
      let vector: Uint32Array;
      try {
        vector = decodeMaskedVector(decoded.packedVector, config.vectorLength, config.modulusBits);
      } catch (error) {
        throw new HubException(HubErrorCode.UPDATE_MALFORMED, (error as Error).message);
      }
      const routing = session.routing;
      if (!routing) throw new HubException(HubErrorCode.CONFLICT, 'The share stage has not closed.');
      const checked = checkMaskedInput(config, routing, decoded.header, vector);
      if (!checked.ok || checked.value.participantId !== siloId) return refusal(checked, siloId, 'upload');
      const sum = new MaskedSumAccumulator(config, {
        sum: session.maskedSum
          ? decodeMaskedVector(session.maskedSum, config.vectorLength, config.modulusBits)
          : new Uint32Array(config.vectorLength),
        contributors: session.contributors,
      });
      sum.add(siloId, vector);
      await tx.updateSession(roundId, {
        maskedSum: Buffer.from(encodeMaskedVector(sum.sum, config.modulusBits)),
        contributors: [...sum.contributors],
      });
      session.contributors = [...sum.contributors];
      return { body: { ...checked.value }, details: { contributors: sum.contributors.length } };
    });
  }

  /* ---------- stage 3: unmasking ---------- */

  /** Checks and stores a survivor's unmasking response (only the shares the plan asks of it). */
  async answerUnmasking(roundId: string, siloId: string, body: unknown, now = new Date()): Promise<SecAggReceipt> {
    return this.accept(roundId, siloId, 'unmask', now, body, (_tx, session) => {
      const plan = session.unmaskingPlan;
      if (!plan) throw new HubException(HubErrorCode.CONFLICT, 'The upload stage has not closed.');
      const checked = checkUnmaskingResponse(plan, body);
      if (!checked.ok || checked.value.participantId !== siloId) return refusal(checked, siloId, 'unmask');
      return {
        body: { ...checked.value },
        details: { shares: checked.value.selfMaskSeedShares.length + checked.value.maskKeyShares.length },
      };
    });
  }

  /**
   * One silo message at one stage: advances the session first, then, under its lock, refuses a message for a stage
   * that is not the current one or a second message, checks it (`check`), and stores it with its audit record.
   */
  private async accept(
    roundId: string,
    siloId: string,
    stage: SecAggMessageStage,
    now: Date,
    /** The message as received (for a masked input, its header): compared with a stored one on a re-send. */
    raw: unknown,
    /** May throw rather than reject: it is awaited inside the try below either way. */
    check: (tx: SecAggStore, session: SecAggSessionEntity) => Accepted | Refused | Promise<Accepted | Refused>,
  ): Promise<SecAggReceipt> {
    await this.stages.advance(roundId, now);
    const outcome = await this.repository.inTransaction(async (tx): Promise<SecAggReceipt | Refused> => {
      const session = await lockedSession(tx, roundId);
      assertParticipant(session, siloId);
      assertNotFailed(session);
      // A re-send of a message the hub holds is answered alike whatever the stage is now (an agent restarted after
      // sending it resumes from there); it changes nothing.
      const existing = await tx.message(roundId, siloId, stage);
      if (existing) return repeated(existing, stage, raw);
      // A late unmasking answer (the session completed with t shares of every secret) is kept, though not needed.
      const late = stage === 'unmask' && session.stage === 'complete';
      if (session.stage !== stage && !late) {
        throw new HubException(
          HubErrorCode.CONFLICT,
          `The round's secure aggregation is at stage '${session.stage}'; a '${stage}' message is not accepted now.`,
        );
      }
      let checked: Accepted | Refused;
      try {
        checked = await check(tx, session);
      } catch (error) {
        if (error instanceof SecAggException) throw new HubException(HubErrorCode.UPDATE_MALFORMED, error.message);
        throw error;
      }
      if ('refused' in checked) {
        // The silo is set aside at this stage: its exclusion and audit record commit, then the sender is told why.
        await this.stages.exclude(tx, session, [checked.refused]);
        return checked;
      }
      const message = Object.assign(new SecAggMessageEntity(), {
        roundId,
        siloId,
        stage,
        body: checked.body,
        receivedAt: now,
      });
      await tx.saveMessage(message);
      await this.audit.record({
        actor: { type: 'silo', id: siloId },
        action: `secagg.${stage}.received`,
        subject: { roundId, siloId },
        details: { configHash: session.configHash, ...checked.details },
      });
      return { stage, accepted: true, receivedAt: now.toISOString() };
    });
    if ('refused' in outcome) throw new HubException(HubErrorCode.UPDATE_MALFORMED, outcome.refused.detail);
    await faultPoint(`secagg-${stage}-committed`);
    // The last message a stage waited for closes it now, not at the next request.
    await this.stages.advance(roundId, now);
    return outcome;
  }
}

/**
 * A second message from a silo at a stage: the same message again (an agent re-sending after a restart) is answered
 * with the first one's receipt and changes nothing; a different one is refused, as the protocol allows one. For a
 * masked input the header is compared: its vector went into the sum and is not kept.
 */
function repeated(existing: SecAggMessageEntity, stage: SecAggMessageStage, raw: unknown): SecAggReceipt {
  // Bodies come from JSON.parse, so they are always canonicalisable.
  const same = canonicalJson(raw) === canonicalJson(existing.body);
  if (!same) {
    throw new HubException(HubErrorCode.CONFLICT, `This silo already sent another '${stage}' message for this round.`);
  }
  return { stage, accepted: true, receivedAt: existing.receivedAt.toISOString() };
}
