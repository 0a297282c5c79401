import { createPrivateKey, randomUUID } from 'node:crypto';
import { generateKeyPair, type KeyPairPem } from '@tessera/pki';
import {
  encodeMaskedInputFrame,
  type SecAggAdvertisementsView,
  type SecAggSharesView,
  type SecAggUnmaskingView,
  type SecureAggregationPlan,
} from '@tessera/protocol';
import {
  advertiseKeys,
  cryptoRandom,
  encodeMaskedVector,
  maskInput,
  quantise,
  revealShares,
  shareKeys,
  type AdvertisedState,
  type KeyAdvertisement,
  type MaskedState,
  type SecAggConfig,
  type SharedState,
  type UnmaskingResponse,
} from '@tessera/secagg';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import { InMemorySecAgg } from './in-memory-secagg.test-util';
import { SecAggMessagesService } from './secagg-messages.service';
import { SecAggSessionsService } from './secagg-sessions.service';
import { SecAggStageMachine } from './secagg-stage-machine.service';
import type { OpenTransaction, SecAggRepository } from './secagg.repository';

/*
 * Secure aggregation's hub services wired to the in-memory tables (in-memory-secagg.test-util.ts), and participants
 * that run @tessera/secagg's participant side against them, for the unit specs of secagg/.
 */

export const PLAN: SecureAggregationPlan = { threshold: 2, modulusBits: 32, clipNorm: 10 };
export const VECTOR_LENGTH = 16;
/** The round opens at OPENED and its deadline is an hour later: the stages close at 15, 24, 51 and 60 minutes. */
export const OPENED = new Date('2026-03-02T10:00:00.000Z');
export const DEADLINE = new Date(OPENED.getTime() + 3_600_000);
/** A moment while every stage is still open. */
export const EARLY = new Date(OPENED.getTime() + 60_000);

/** Identity keys (RSA) take a second or more each: a pool shared by a spec file's tests, one key per participant. */
const KEYS: KeyPairPem[] = [];
function identityKey(index: number): KeyPairPem {
  while (KEYS.length <= index) KEYS.push(generateKeyPair());
  return KEYS[index]!;
}

/** Generates the pool's first `count` keys (a spec's beforeAll, with a timeout that allows for it). */
export function warmIdentityKeys(count = 5): void {
  identityKey(count - 1);
}

/** beforeAll's timeout for warmIdentityKeys on a loaded machine. */
export const KEY_GENERATION_TIMEOUT_MS = 120_000;

interface Recorded {
  readonly event: AuditEvent;
  readonly tx: number | undefined;
}

/** One silo's participant side, with the state it keeps between stages. */
export class Participant {
  readonly id = randomUUID();
  advertised?: AdvertisedState;
  shared?: SharedState;
  masked?: MaskedState;

  constructor(readonly key: KeyPairPem) {}

  advertisement(config: SecAggConfig, signWith: KeyPairPem = this.key): KeyAdvertisement {
    const { state, advertisement } = advertiseKeys({
      config,
      participantId: this.id,
      identityKey: createPrivateKey(signWith.privateKeyPem),
    });
    this.advertised = state;
    return advertisement;
  }

  async shareMessage(view: SecAggAdvertisementsView): Promise<unknown> {
    if (!view.ready) throw new Error('the advertise stage has not closed');
    const { state, message } = await shareKeys(this.advertised!, {
      advertisements: view.advertisements,
      identityKeys: new Map(Object.entries(view.identityCertificates)),
    });
    this.shared = state;
    return message;
  }

  /** The masked-input frame of `update` (quantised with the session's scale). */
  maskedFrame(config: SecAggConfig, routed: SecAggSharesView, update: Float64Array): Uint8Array {
    if (!routed.ready) throw new Error('the share stage has not closed');
    const { vector: input } = quantise(update, config, cryptoRandom);
    const { state, header, vector } = maskInput(this.shared!, { shares: routed.shares, input });
    this.masked = state;
    return encodeMaskedInputFrame({ ...header }, encodeMaskedVector(vector, config.modulusBits));
  }

  unmaskingResponse(view: SecAggUnmaskingView): UnmaskingResponse {
    if (!view.ready || !view.request) throw new Error(`${this.id} is not asked to unmask`);
    return revealShares(this.masked!, view.request).response;
  }
}

/** A deterministic update per participant, well inside the clipping norm. */
export function updateOf(index: number): Float64Array {
  return Float64Array.from({ length: VECTOR_LENGTH }, (_, i) => Math.sin(index * 31 + i * 0.7) * 0.3);
}

/**
 * The three services over one in-memory database, an audit trail that keeps a record only if the transaction it
 * joined committed, `count` enrolled participants (active certificates, waiting in the round) and an open session.
 */
export async function secaggHarness(count = 4) {
  const store = new InMemorySecAgg();
  const written: Recorded[] = [];
  let auditFails: ((event: AuditEvent) => boolean) | undefined;
  const audit: AuditTrail = {
    record: (event: AuditEvent) => {
      if (auditFails?.(event)) return Promise.reject(new Error(`audit refused ${event.action}`));
      written.push({ event, tx: store.openTransaction() });
      return Promise.resolve();
    },
  };
  const repository = store as unknown as SecAggRepository;
  const stages = new SecAggStageMachine(repository, audit);
  const messages = new SecAggMessagesService(repository, stages, audit);
  const sessions = new SecAggSessionsService(repository, stages, audit);
  const silos = Array.from({ length: count }, (_, i) => new Participant(identityKey(i)));
  const roundId = randomUUID();
  const studyId = randomUUID();
  for (const s of silos) {
    // The check accepts the identity's public key as well as a certificate (identity-signature.ts).
    store.certificates.push({ siloId: s.id, status: 'active', notBefore: OPENED, certificatePem: s.key.publicKeyPem });
    store.committedParticipants.set(`${roundId}/${s.id}`, {
      roundId,
      siloId: s.id,
      status: 'waiting',
      reportedAt: null,
    });
  }
  store.openRounds.set(`${studyId}/1`, roundId);
  const round = { id: roundId, studyId, openedAt: OPENED, deadlineAt: DEADLINE };
  const session = await store.inTransaction((tx) =>
    sessions.open(
      tx as unknown as OpenTransaction,
      round,
      PLAN,
      silos.map((s) => s.id),
      VECTOR_LENGTH,
    ),
  );
  const records = (action?: string) =>
    written
      .filter((r) => r.tx === undefined || store.didCommit(r.tx))
      .map((r) => r.event)
      .filter((e) => action === undefined || e.action === action);
  return {
    store,
    stages,
    messages,
    sessions,
    silos,
    round,
    roundId,
    config: session.config,
    records,
    failAuditWhen: (rule: ((event: AuditEvent) => boolean) | undefined) => (auditFails = rule),
  };
}

export type SecAggHarness = Awaited<ReturnType<typeof secaggHarness>>;

/** Every given participant advertises (at `now`); returns the relayed advertisements once the stage closed. */
export async function advertiseAll(h: SecAggHarness, who = h.silos, now = EARLY): Promise<SecAggAdvertisementsView> {
  for (const s of who) await h.messages.advertise(h.roundId, s.id, s.advertisement(h.config), now);
  return h.sessions.advertisements(h.roundId, who[0]!.id, now);
}

/** The harness's first four silos as a tuple (the suites' a, b, c, d). */
export function fourSilos(h: SecAggHarness): [HarnessSilo, HarnessSilo, HarnessSilo, HarnessSilo] {
  const [a, b, c, d] = h.silos;
  if (!a || !b || !c || !d) throw new Error('the harness has fewer than four silos');
  return [a, b, c, d];
}

type HarnessSilo = SecAggHarness['silos'][number];

/** Every given participant shares its keys. */
export async function shareAll(h: SecAggHarness, ads: SecAggAdvertisementsView, who = h.silos, now = EARLY) {
  for (const s of who) await h.messages.share(h.roundId, s.id, await s.shareMessage(ads), now);
}

/** Every given participant uploads its masked update (updateOf its index in the roster); returns their float sum. */
export async function uploadAll(h: SecAggHarness, who = h.silos, now = EARLY): Promise<Float64Array> {
  const sum = new Float64Array(VECTOR_LENGTH);
  for (const s of who) {
    const update = updateOf(h.silos.indexOf(s));
    update.forEach((v, j) => (sum[j] = sum[j]! + v));
    const routed = await h.sessions.routedShares(h.roundId, s.id, now);
    await h.messages.maskedInput(h.roundId, s.id, s.maskedFrame(h.config, routed, update), now);
  }
  return sum;
}
