import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import {
  decodeMaskedInputFrame,
  type SecAggAdvertisementsView,
  type SecAggReceipt,
  type SecAggSessionView,
  type SecAggSharesView,
  type SecAggStageName,
  type SecAggUnmaskingView,
  type SecureAggregationPlan,
} from '@tessera/protocol';
import {
  checkMaskedInput,
  checkShareMessage,
  checkUnmaskingResponse,
  decodeMaskedVector,
  dequantiseSum,
  ExclusionReason,
  encodeMaskedVector,
  MaskedSumAccumulator,
  secAggConfigHash,
  SecAggException,
  unmaskingProgress,
  unmaskSum,
  type MaskedInputHeader,
  type Checked,
  type ParticipantExclusion,
  type SecAggStage,
  type ShareKeysMessage,
  type UnmaskingResponse,
} from '@tessera/secagg';
import { canonicalJson } from '@tessera/canonical';
import { distributedNoisePlan } from '@tessera/dp';
import { DataSource, In, type EntityManager } from 'typeorm';
import { AuditTrail, SYSTEM_ACTOR } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { faultPoint } from '../faults/fault-point.util';
import { openRoundFor } from '../study-state/open-round.util';
import { RoundParticipantEntity } from '../study-state/round-participant.entity';
import { SiloCertificateEntity } from '../silos/silo-certificate.entity';
import type { SiloIdentity } from '../silos/silo-identity';
import { SecAggMessageEntity, type SecAggMessageStage } from './secagg-message.entity';
import { SecAggSessionEntity } from './secagg-session.entity';
import { closeAdvertise, closeShare, closeUpload, sessionConfig, stageDeadlines } from './secagg-stage.util';

/** The unmasked, dequantised sum of a completed session, with who is in it. */
export interface UnmaskedSum {
  /** Σ over the survivors of their clipped updates, dequantised (within survivors/scale of the float sum per value). */
  sum: Float64Array;
  survivors: string[];
  /** Worst-case absolute error per coordinate from stochastic rounding: survivors / scale. */
  quantisationErrorBound: number;
  /** The round's quantisation scale s, threshold t and vector length: what the silos sized their noise shares by. */
  scale: number;
  threshold: number;
  vectorLength: number;
}

const STAGE_ORDER: readonly SecAggStageName[] = ['advertise', 'share', 'upload', 'unmask', 'complete'];

/**
 * Secure aggregation at the hub (issue 16, items 2 and 3): every silo message is checked with @tessera/secagg and
 * stored with its audit record in one transaction; a stage closes, under the session's row lock, when every silo
 * that could still take part has sent its message or the stage's deadline has passed. Stages advance lazily, on
 * the next request or tick after the condition holds, so nothing depends on a timer surviving a restart. The masked
 * input of a silo is added to the persisted running sum in the transaction that accepts it and never stored.
 */
@Injectable()
export class SecAggSessionsService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
  ) {}

  /**
   * Starts the protocol for a round (inside the caller's transaction, which opens the round): the configuration
   * from the plan and the roster, a fresh public round seed, and the stage deadlines. Throws SecAggException when the
   * roster cannot run the plan's parameters.
   */
  async open(
    tx: EntityManager,
    round: { id: string; studyId: string; openedAt: Date; deadlineAt: Date },
    plan: SecureAggregationPlan,
    roster: readonly string[],
    vectorLength: number,
    distributedNoiseMultiplier: number | null = null,
  ): Promise<SecAggSessionEntity> {
    const config = sessionConfig({
      roundId: round.id,
      roster,
      plan,
      vectorLength,
      roundSeed: randomBytes(32).toString('hex'),
      distributedNoiseMultiplier,
    });
    // What each silo will add (it computes the same itself from the plan and this configuration, never from us).
    const noise =
      distributedNoiseMultiplier === null
        ? null
        : distributedNoisePlan({
            clipNorm: config.clipNorm,
            scale: config.scale,
            dimension: config.vectorLength,
            shares: config.threshold,
            noiseMultiplier: distributedNoiseMultiplier,
          });
    const d = stageDeadlines(round.openedAt, round.deadlineAt);
    const session = tx.getRepository(SecAggSessionEntity).create({
      roundId: round.id,
      config,
      configHash: secAggConfigHash(config),
      stage: 'advertise',
      advertiseUntil: d.advertise,
      shareUntil: d.share,
      uploadUntil: d.upload,
      unmaskUntil: d.unmask,
      advertised: null,
      exclusions: [],
      routing: null,
      unmaskingPlan: null,
      maskedSum: null,
      contributors: [],
      failure: null,
      createdAt: new Date(),
    });
    await tx.getRepository(SecAggSessionEntity).insert(session);
    await this.audit.record({
      actor: SYSTEM_ACTOR,
      action: 'secagg.session.opened',
      subject: { studyId: round.studyId, roundId: round.id },
      details: {
        configHash: session.configHash,
        participants: config.participants.length,
        neighbourCount: config.neighbourCount,
        threshold: config.threshold,
        modulusBits: config.modulusBits,
        clipNorm: config.clipNorm,
        scale: config.scale,
        vectorLength: config.vectorLength,
        deadlines: { advertise: d.advertise, share: d.share, upload: d.upload, unmask: d.unmask },
        ...(noise ? { distributedNoise: noise } : {}),
      },
    });
    return session;
  }

  /**
   * The id of the study's open round `roundNumber` for this silo (every refusal of an update applies: not invited,
   * not a participant, study not running, another round, deadline passed), refused when it runs no protocol.
   */
  async roundFor(silo: SiloIdentity, studyId: string, roundNumber: number): Promise<string> {
    const { round } = await openRoundFor(this.db, silo, studyId, roundNumber);
    if (!(await this.db.getRepository(SecAggSessionEntity).existsBy({ roundId: round.id }))) {
      throw new HubException(HubErrorCode.NOT_FOUND, `Round ${roundNumber} does not run secure aggregation.`);
    }
    return round.id;
  }

  /** The session of a round, or null when the round does not run secure aggregation. */
  find(roundId: string): Promise<SecAggSessionEntity | null> {
    return this.db.getRepository(SecAggSessionEntity).findOneBy({ roundId });
  }

  /** What a participant needs to begin: the configuration, its hash, the stage and its deadlines. */
  async view(roundId: string, siloId: string, now = new Date()): Promise<SecAggSessionView> {
    const session = await this.advance(roundId, now);
    this.assertParticipant(session, siloId);
    return {
      config: { ...session.config },
      configHash: session.configHash,
      stage: session.stage,
      deadlines: {
        advertise: session.advertiseUntil.toISOString(),
        share: session.shareUntil.toISOString(),
        upload: session.uploadUntil.toISOString(),
        unmask: session.unmaskUntil.toISOString(),
      },
      failure: session.failure,
    };
  }

  /* ---------- stage 0: advertise keys ---------- */

  /** Stores a silo's key advertisement; it is checked (signature included) when the stage closes. */
  async advertise(roundId: string, siloId: string, body: unknown, now = new Date()): Promise<SecAggReceipt> {
    return this.accept(roundId, siloId, 'advertise', now, body, async (_tx, session) => {
      this.assertParticipant(session, siloId);
      if (!isObject(body) || body.participantId !== siloId) {
        throw new HubException(HubErrorCode.UPDATE_MALFORMED, 'An advertisement names its sender as participantId.');
      }
      return { body, details: { configHash: session.configHash } };
    });
  }

  /** The accepted advertisements and their signers' certificates, once the advertise stage has closed. */
  async advertisements(roundId: string, siloId: string, now = new Date()): Promise<SecAggAdvertisementsView> {
    const session = await this.advance(roundId, now);
    this.assertParticipant(session, siloId);
    if (session.stage === 'advertise') return notReady(session);
    this.assertNotFailed(session);
    const advertised = session.advertised ?? [];
    const keys = await this.identityCertificates(advertised.map((a) => a.participantId));
    return {
      ready: true,
      advertisements: advertised.map((a) => ({ ...a })),
      identityCertificates: Object.fromEntries(keys),
    };
  }

  /* ---------- stage 1: share keys ---------- */

  /** Checks and stores a silo's share message (its shares stay encrypted to their recipients). */
  async share(roundId: string, siloId: string, body: unknown, now = new Date()): Promise<SecAggReceipt> {
    return this.accept(roundId, siloId, 'share', now, body, async (_tx, session) => {
      const checked = checkShareMessage(session.config, session.advertised ?? [], body);
      if (!checked.ok || checked.value.participantId !== siloId) return refusal(checked, siloId, 'share');
      return { body: { ...checked.value }, details: { recipients: checked.value.shares.length } };
    });
  }

  /** The encrypted shares routed to the caller, once the share stage has closed. */
  async routedShares(roundId: string, siloId: string, now = new Date()): Promise<SecAggSharesView> {
    const session = await this.advance(roundId, now);
    this.assertParticipant(session, siloId);
    if (session.stage === 'advertise' || session.stage === 'share') return notReady(session);
    this.assertNotFailed(session);
    const delivery = session.routing?.deliveries.find((d) => d.recipient === siloId);
    if (!delivery) {
      throw new HubException(HubErrorCode.ROUND_CLOSED, 'This silo did not complete sharing in this round.');
    }
    return { ready: true, shares: delivery.shares.map((s) => ({ ...s })) };
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
      await tx.getRepository(SecAggSessionEntity).update(
        { roundId },
        {
          maskedSum: Buffer.from(encodeMaskedVector(sum.sum, config.modulusBits)),
          contributors: [...sum.contributors],
        },
      );
      session.contributors = [...sum.contributors];
      return { body: { ...checked.value }, details: { contributors: sum.contributors.length } };
    });
  }

  /* ---------- stage 3: unmasking ---------- */

  /** The one unmasking request, once the upload stage has closed; null for a silo that is not a survivor. */
  async unmaskingRequest(roundId: string, siloId: string, now = new Date()): Promise<SecAggUnmaskingView> {
    const session = await this.advance(roundId, now);
    this.assertParticipant(session, siloId);
    if (STAGE_ORDER.indexOf(session.stage) < STAGE_ORDER.indexOf('unmask') && session.stage !== 'failed') {
      return notReady(session);
    }
    this.assertNotFailed(session);
    const plan = session.unmaskingPlan;
    const asked = plan?.request.survivors.includes(siloId) ?? false;
    return { ready: true, request: asked && plan ? { ...plan.request } : null };
  }

  /** Checks and stores a survivor's unmasking response (only the shares the plan asks of it). */
  async answerUnmasking(roundId: string, siloId: string, body: unknown, now = new Date()): Promise<SecAggReceipt> {
    return this.accept(roundId, siloId, 'unmask', now, body, async (_tx, session) => {
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
   * The unmasked, dequantised sum of a complete session (computed outside any transaction: the caller holds the
   * round's close claim, so one hub does this once). Throws when the session is not complete.
   */
  async unmask(roundId: string): Promise<UnmaskedSum> {
    const session = await this.db.getRepository(SecAggSessionEntity).findOneByOrFail({ roundId });
    if (session.stage !== 'complete' || !session.unmaskingPlan || !session.routing || !session.maskedSum) {
      throw new HubException(
        HubErrorCode.CONFLICT,
        `The secure-aggregation session is ${session.stage}, not complete.`,
      );
    }
    const { config } = session;
    const responses = (await this.messages(this.db.manager, roundId, 'unmask')).map(
      (m) => m.body as unknown as UnmaskingResponse,
    );
    const masked = decodeMaskedVector(session.maskedSum, config.vectorLength, config.modulusBits);
    const total = await unmaskSum(
      config,
      { routing: session.routing, advertised: session.advertised ?? [], plan: session.unmaskingPlan },
      responses,
      masked,
    );
    const survivors = [...session.unmaskingPlan.request.survivors];
    return {
      sum: dequantiseSum(total, config),
      survivors,
      quantisationErrorBound: survivors.length / config.scale,
      scale: config.scale,
      threshold: config.threshold,
      vectorLength: config.vectorLength,
    };
  }

  /**
   * Closes every stage whose condition holds (all possible senders answered, or its deadline passed), each in its
   * own transaction under the session's row lock, with its audit records. Returns the session as it then stands.
   */
  async advance(roundId: string, now = new Date()): Promise<SecAggSessionEntity> {
    for (;;) {
      const moved = await this.db.transaction(async (tx) => {
        const session = await this.lockSession(tx, roundId);
        return (await this.closeStageIfDue(tx, session, now)) ? null : session;
      });
      if (moved) return moved;
    }
  }

  private async closeStageIfDue(tx: EntityManager, session: SecAggSessionEntity, now: Date): Promise<boolean> {
    const { config } = session;
    switch (session.stage) {
      case 'advertise': {
        const submitted = await this.messages(tx, session.roundId, 'advertise');
        if (submitted.length < config.participants.length && now < session.advertiseUntil) return false;
        const keys = await this.identityCertificates(
          submitted.map((m) => m.siloId),
          tx,
        );
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
          {
            accepted: outcome.value.map((a) => a.participantId),
            silent,
          },
        );
      }
      case 'share': {
        const messages = await this.messages(tx, session.roundId, 'share');
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
          {
            sharers: outcome.value.sharers.map((s) => s.participantId),
            silent,
          },
        );
      }
      case 'upload': {
        const headers = await this.messages(tx, session.roundId, 'upload');
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
          {
            survivors: outcome.value.request.survivors,
            dropped: outcome.value.request.dropped,
            silent,
          },
        );
      }
      case 'unmask': {
        const plan = session.unmaskingPlan;
        if (!plan) return this.fail(tx, session, 'unmask', 'The unmasking plan is missing.');
        const responses = await this.messages(tx, session.roundId, 'unmask');
        const progress = unmaskingProgress(
          plan,
          responses.map((m) => m.body as unknown as UnmaskingResponse),
        );
        const silent = silentAt(plan.request.survivors, responses);
        if (progress.ready) {
          // The survivors' inputs are in the sum that can now be unmasked: they reported, for the round's close.
          await tx
            .getRepository(RoundParticipantEntity)
            .update(
              { roundId: session.roundId, siloId: In(plan.request.survivors), status: 'waiting' },
              { status: 'uploaded', reportedAt: now },
            );
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
    tx: EntityManager,
    session: SecAggSessionEntity,
    stage: SecAggStageName,
    changes: Partial<Pick<SecAggSessionEntity, 'advertised' | 'routing' | 'unmaskingPlan'>>,
    details: Record<string, unknown>,
  ): Promise<boolean> {
    const closed = session.stage;
    await tx.getRepository(SecAggSessionEntity).update({ roundId: session.roundId }, { ...changes, stage });
    await this.audit.record({
      actor: SYSTEM_ACTOR,
      action: 'secagg.stage.closed',
      subject: { roundId: session.roundId },
      details: { stage: closed, next: stage, configHash: session.configHash, ...details },
    });
    return true;
  }

  private async fail(
    tx: EntityManager,
    session: SecAggSessionEntity,
    stage: string,
    failure: string,
    /** Who could have sent at this stage and did not: the dropouts that failed it. */
    silent: string[] = [],
  ): Promise<boolean> {
    await tx.getRepository(SecAggSessionEntity).update({ roundId: session.roundId }, { stage: 'failed', failure });
    await this.audit.record({
      actor: SYSTEM_ACTOR,
      action: 'secagg.session.failed',
      subject: { roundId: session.roundId },
      details: { stage, failure, configHash: session.configHash, silent },
    });
    return true;
  }

  /** Records silos set aside (one audit record each) and keeps them in the session. */
  private async exclude(
    tx: EntityManager,
    session: SecAggSessionEntity,
    exclusions: ParticipantExclusion[],
  ): Promise<void> {
    if (exclusions.length === 0) return;
    const all = [...session.exclusions, ...exclusions];
    await tx.getRepository(SecAggSessionEntity).update({ roundId: session.roundId }, { exclusions: all });
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
    check: (tx: EntityManager, session: SecAggSessionEntity) => Promise<Accepted | Refused>,
  ): Promise<SecAggReceipt> {
    await this.advance(roundId, now);
    const outcome = await this.db.transaction(async (tx): Promise<SecAggReceipt | Refused> => {
      const session = await this.lockSession(tx, roundId);
      this.assertParticipant(session, siloId);
      this.assertNotFailed(session);
      // A re-send of a message the hub holds is answered alike whatever the stage is now (an agent restarted after
      // sending it resumes from there); it changes nothing.
      const existing = await tx.getRepository(SecAggMessageEntity).findOneBy({ roundId, siloId, stage });
      if (existing) return this.repeated(existing, stage, raw);
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
        await this.exclude(tx, session, [checked.refused]);
        return checked;
      }
      const message = Object.assign(new SecAggMessageEntity(), {
        roundId,
        siloId,
        stage,
        body: checked.body,
        receivedAt: now,
      });
      await tx.getRepository(SecAggMessageEntity).save(message);
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
    await this.advance(roundId, now);
    return outcome;
  }

  /**
   * A second message from a silo at a stage: the same message again (an agent re-sending after a restart) is answered
   * with the first one's receipt and changes nothing; a different one is refused, as the protocol allows one. For a
   * masked input the header is compared: its vector went into the sum and is not kept.
   */
  private repeated(existing: SecAggMessageEntity, stage: SecAggMessageStage, raw: unknown): SecAggReceipt {
    // Bodies come from JSON.parse, so they are always canonicalisable.
    const same = canonicalJson(raw) === canonicalJson(existing.body);
    if (!same) {
      throw new HubException(
        HubErrorCode.CONFLICT,
        `This silo already sent another '${stage}' message for this round.`,
      );
    }
    return { stage, accepted: true, receivedAt: existing.receivedAt.toISOString() };
  }

  private lockSession(tx: EntityManager, roundId: string): Promise<SecAggSessionEntity> {
    return tx
      .getRepository(SecAggSessionEntity)
      .findOne({ where: { roundId }, lock: { mode: 'pessimistic_write' } })
      .then((s) => {
        if (!s) throw new HubException(HubErrorCode.NOT_FOUND, 'This round does not run secure aggregation.');
        return s;
      });
  }

  private messages(tx: EntityManager, roundId: string, stage: SecAggMessageStage): Promise<SecAggMessageEntity[]> {
    return tx.getRepository(SecAggMessageEntity).find({ where: { roundId, stage }, order: { siloId: 'ASC' } });
  }

  /** Each silo's active certificate (PEM): the identity key its advertisement must be signed with. */
  private async identityCertificates(
    siloIds: string[],
    tx: EntityManager = this.db.manager,
  ): Promise<Map<string, string>> {
    if (siloIds.length === 0) return new Map();
    const certs = await tx.getRepository(SiloCertificateEntity).find({
      where: { siloId: In(siloIds), status: 'active' },
      order: { notBefore: 'ASC' },
    });
    // The newest active certificate wins (a renewal overlaps its predecessor briefly).
    return new Map(certs.map((c) => [c.siloId, c.certificatePem]));
  }

  private assertParticipant(session: SecAggSessionEntity, siloId: string): void {
    if (!session.config.participants.includes(siloId)) {
      throw new HubException(HubErrorCode.FORBIDDEN, "This silo is not in the round's secure-aggregation roster.");
    }
  }

  private assertNotFailed(session: SecAggSessionEntity): void {
    if (session.stage === 'failed') {
      throw new HubException(
        HubErrorCode.ROUND_CLOSED,
        `The round's secure aggregation failed: ${session.failure ?? ''}`,
      );
    }
  }
}

/** A message accepted by a stage's check: what to store and what to audit. */
interface Accepted {
  body: Record<string, unknown>;
  details: Record<string, unknown>;
}

/** A message refused by a stage's check: the sender is set aside at this stage, for this reason. */
interface Refused {
  refused: ParticipantExclusion;
}

/** The refusal of a checked message, always in the sender's name (whatever participant the message claims). */
function refusal(checked: Checked<{ participantId: string }>, siloId: string, stage: SecAggStage): Refused {
  return {
    refused: checked.ok
      ? {
          participantId: siloId,
          stage,
          reason: ExclusionReason.Malformed,
          detail: `The message names ${checked.value.participantId} as its sender.`,
        }
      : { ...checked.exclusion, participantId: siloId },
  };
}

function notReady(session: SecAggSessionEntity): { ready: false; stage: SecAggStageName; until: string } {
  const until =
    session.stage === 'advertise'
      ? session.advertiseUntil
      : session.stage === 'share'
        ? session.shareUntil
        : session.uploadUntil;
  return { ready: false, stage: session.stage, until: until.toISOString() };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}

/**
 * Who was expected at a stage (roster order) and sent nothing there: the silos that dropped at it. Recorded with the
 * stage's close or the session's failure, so the audit trail names each dropout at the stage it was lost.
 */
function silentAt(expected: readonly string[], received: readonly { siloId: string }[]): string[] {
  const sent = new Set(received.map((m) => m.siloId));
  return expected.filter((id) => !sent.has(id));
}
