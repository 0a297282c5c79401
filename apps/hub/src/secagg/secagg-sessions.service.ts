import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type {
  SecAggAdvertisementsView,
  SecAggSessionView,
  SecAggSharesView,
  SecAggUnmaskingView,
  SecureAggregationPlan,
} from '@tessera/protocol';
import {
  decodeMaskedVector,
  dequantiseSum,
  secAggConfigHash,
  unmaskSum,
  type UnmaskingResponse,
} from '@tessera/secagg';
import { distributedNoisePlan } from '@tessera/dp';
import { AuditTrail, SYSTEM_ACTOR } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { SiloIdentity } from '../silos/silo-identity';
import type { SecAggSessionEntity } from './secagg-session.entity';
import { assertNotFailed, assertParticipant, notReady, STAGE_ORDER } from './secagg-session-rules.util';
import { SecAggStageMachine } from './secagg-stage-machine.service';
import { sessionConfig, stageDeadlines } from './secagg-stage.util';
import { SecAggRepository, type OpenTransaction } from './secagg.repository';

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

/**
 * Secure aggregation at the hub (issue 16, items 2 and 3), as the round engine and the silos' reads see it: a
 * session opened with its round, what each stage's close made available to the participants, and the unmasked sum
 * of a complete session. The stages close in SecAggStageMachine; what silos send is taken by SecAggMessagesService.
 */
/** A stage view's long poll reads the session again at least this often (a stage another hub replica moved). */
export const STAGE_POLL_MS = 1000;

@Injectable()
export class SecAggSessionsService {
  constructor(
    private readonly repository: SecAggRepository,
    private readonly stages: SecAggStageMachine,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
  ) {}

  /**
   * Starts the protocol for a round (inside the caller's transaction, which opens the round): the configuration
   * from the plan and the roster, a fresh public round seed, and the stage deadlines. Throws SecAggException when the
   * roster cannot run the plan's parameters.
   */
  async open(
    tx: OpenTransaction,
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
    const session = await this.repository.within(tx).insertSession({
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
    const roundId = await this.repository.openRoundId(silo, studyId, roundNumber);
    if (!(await this.repository.exists(roundId))) {
      throw new HubException(HubErrorCode.NOT_FOUND, `Round ${roundNumber} does not run secure aggregation.`);
    }
    return roundId;
  }

  /** The session of a round, or null when the round does not run secure aggregation. */
  find(roundId: string): Promise<SecAggSessionEntity | null> {
    return this.repository.find(roundId);
  }

  /** What a participant needs to begin: the configuration, its hash, the stage and its deadlines. */
  async view(roundId: string, siloId: string, now = new Date()): Promise<SecAggSessionView> {
    const session = await this.advance(roundId, now);
    assertParticipant(session, siloId);
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

  /* ---------- what a stage's close made available ---------- */

  /** The accepted advertisements and their signers' certificates, once the advertise stage has closed. */
  async advertisements(roundId: string, siloId: string, now = new Date()): Promise<SecAggAdvertisementsView> {
    const session = await this.advance(roundId, now);
    assertParticipant(session, siloId);
    if (session.stage === 'advertise') return notReady(session);
    assertNotFailed(session);
    const advertised = session.advertised ?? [];
    const keys = await this.repository.outside().identityCertificates(advertised.map((a) => a.participantId));
    return {
      ready: true,
      advertisements: advertised.map((a) => ({ ...a })),
      identityCertificates: Object.fromEntries(keys),
    };
  }

  /** The encrypted shares routed to the caller, once the share stage has closed. */
  async routedShares(roundId: string, siloId: string, now = new Date()): Promise<SecAggSharesView> {
    const session = await this.advance(roundId, now);
    assertParticipant(session, siloId);
    if (session.stage === 'advertise' || session.stage === 'share') return notReady(session);
    assertNotFailed(session);
    const delivery = session.routing?.deliveries.find((d) => d.recipient === siloId);
    if (!delivery) {
      throw new HubException(HubErrorCode.ROUND_CLOSED, 'This silo did not complete sharing in this round.');
    }
    return { ready: true, shares: delivery.shares.map((s) => ({ ...s })) };
  }

  /** The one unmasking request, once the upload stage has closed; null for a silo that is not a survivor. */
  async unmaskingRequest(roundId: string, siloId: string, now = new Date()): Promise<SecAggUnmaskingView> {
    const session = await this.advance(roundId, now);
    assertParticipant(session, siloId);
    if (STAGE_ORDER.indexOf(session.stage) < STAGE_ORDER.indexOf('unmask') && session.stage !== 'failed') {
      return notReady(session);
    }
    assertNotFailed(session);
    const plan = session.unmaskingPlan;
    const asked = plan?.request.survivors.includes(siloId) ?? false;
    return { ready: true, request: asked && plan ? { ...plan.request } : null };
  }

  /**
   * The unmasked, dequantised sum of a complete session (computed outside any transaction: the caller holds the
   * round's close claim, so one hub does this once). Throws when the session is not complete.
   */
  async unmask(roundId: string): Promise<UnmaskedSum> {
    const session = await this.repository.get(roundId);
    if (session.stage !== 'complete' || !session.unmaskingPlan || !session.routing || !session.maskedSum) {
      throw new HubException(
        HubErrorCode.CONFLICT,
        `The secure-aggregation session is ${session.stage}, not complete.`,
      );
    }
    const { config } = session;
    const responses = (await this.repository.outside().messages(roundId, 'unmask')).map(
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

  /** Closes every stage whose condition holds (SecAggStageMachine.advance); returns the session as it then stands. */
  advance(roundId: string, now = new Date()): Promise<SecAggSessionEntity> {
    return this.stages.advance(roundId, now);
  }

  /**
   * Long poll of a stage view: `read` again each time this hub moves the round's stage, until the view is ready or
   * `waitMs` has passed (then the view as it stands, not ready). Between moves it reads again at least every
   * STAGE_POLL_MS and at the stage's deadline, so a stage moved by another hub replica or closed by its deadline is
   * answered without waiting out `waitMs`.
   */
  async waitFor<T extends { ready: boolean; until?: string }>(
    roundId: string,
    waitMs: number,
    read: (now: Date) => Promise<T>,
    options: { clock?: () => Date; pollMs?: number } = {},
  ): Promise<T> {
    const clock = options.clock ?? (() => new Date());
    const end = Date.now() + waitMs;
    for (;;) {
      const view = await read(clock());
      const left = end - Date.now();
      if (view.ready || left <= 0 || this.stages.stopped) return view;
      const deadline = view.until === undefined ? Infinity : Date.parse(view.until) - clock().getTime();
      const pause = Math.min(left, options.pollMs ?? STAGE_POLL_MS, Math.max(10, deadline + 1));
      await this.stages.nextMove(roundId, pause);
    }
  }
}
