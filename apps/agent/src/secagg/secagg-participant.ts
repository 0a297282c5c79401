import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import {
  encodeMaskedInputFrame,
  type SecAggAdvertisementsView,
  type SecAggSessionView,
  type SecAggSharesView,
  type SecAggUnmaskingView,
} from '@tessera/protocol';
import {
  defaultRandomSource,
  distributedNoisePlan,
  latticeIntegers,
  type DistributedNoisePlan,
  type RandomSource,
} from '@tessera/dp';
import {
  addNoiseShare,
  advertiseKeys,
  cryptoRandom,
  encodeMaskedVector,
  maskInput,
  parseSecAggConfig,
  quantise,
  revealShares,
  SecAggErrorCode,
  SecAggException,
  shareKeys,
  type QuantisationTrace,
  type SecAggConfig,
  type SecAggRandom,
} from '@tessera/secagg';
import { agentFaultPoint } from '../faults/fault-point.util';
import type { SecAggStateStore, StoredParticipant } from './secagg-state-store';

/** The hub's secure-aggregation routes for one round, as the participant uses them (HTTP in the agent, a double in tests). */
export interface SecAggTransport {
  session(): Promise<SecAggSessionView>;
  /**
   * Each POST resolves when the hub holds the message (a re-sent identical message included) and throws
   * SecAggDropout when the hub says the round went on without this silo (stage closed, session failed, round closed).
   */
  advertise(advertisement: object): Promise<void>;
  advertisements(): Promise<SecAggAdvertisementsView>;
  share(message: object): Promise<void>;
  routedShares(): Promise<SecAggSharesView>;
  uploadMaskedInput(frame: Uint8Array): Promise<void>;
  unmaskingRequest(): Promise<SecAggUnmaskingView>;
  answerUnmasking(response: object): Promise<void>;
}

/** Distributed DP (privacy.noise 'distributed'): what this silo's noise share is sized from, taken from the plan. */
export interface NoiseShareRequest {
  /** z: the noise multiplier the plan's accountant charges (this silo derives it itself, privacyMechanismOf). */
  noiseMultiplier: number;
  /** C: the plan's clip norm; a round configured with another is refused (the noise is sized for this one). */
  clipNorm: number;
  /** t: the plan's threshold, the fewest shares a released sum holds. */
  shares: number;
}

/** What contribute() applied: the quantisation and, with distributed DP, the noise share's parameters. */
export type ContributionTrace = QuantisationTrace & { noise: DistributedNoisePlan | null };

/**
 * The noise share for this round's configuration, refusing (as a dropout: nothing is sent) a configuration that does
 * not match what the plan sized the noise for. The scale and length are the round's; σ follows them, so a hub that
 * picked another scale changes the lattice but never the privacy.
 */
function noiseShareFor(config: SecAggConfig, noise: NoiseShareRequest): DistributedNoisePlan {
  if (config.clipNorm !== noise.clipNorm || config.threshold !== noise.shares) {
    throw new SecAggDropout(
      `The round's clip norm ${config.clipNorm} and threshold ${config.threshold} are not the plan's ` +
        `(${noise.clipNorm}, ${noise.shares}), for which the noise share is sized: not taking part.`,
    );
  }
  return distributedNoisePlan({
    clipNorm: noise.clipNorm,
    scale: config.scale,
    dimension: config.vectorLength,
    shares: noise.shares,
    noiseMultiplier: noise.noiseMultiplier,
  });
}

/**
 * Parsed keys by their PEM text, for the life of the agent process: the enrolled private key and the silos'
 * certificates change only at enrolment and renewal, not per round, while parsing them cost more than signing and
 * verifying with them (an RSA private key PEM ~0.5 ms, a certificate ~0.2 ms, each round). Keyed by the exact text, so
 * a renewed key or certificate is parsed afresh; the signatures are still made and checked every round. Bounded: a
 * long-running agent sees a few certificates per renewal period, and the cache starts over if that ever exceeds it.
 */
class ParsedKeyCache {
  private readonly keys = new Map<string, KeyObject>();
  constructor(private readonly limit: number) {}

  get(pem: string, parse: (pem: string) => KeyObject): KeyObject {
    let key = this.keys.get(pem);
    if (key === undefined) {
      key = parse(pem);
      if (this.keys.size >= this.limit) this.keys.clear();
      this.keys.set(pem, key);
    }
    return key;
  }
}

const identityPrivateKeys = new ParsedKeyCache(4);
const identityCertificateKeys = new ParsedKeyCache(1024);

/**
 * The neighbours' identity public keys from the certificates the hub relayed (see the threat model for what a hub
 * that runs the CA can do with them). A certificate that cannot be read stays a PEM string, so the library excludes
 * its silo with IDENTITY_KEY_UNSUPPORTED exactly as before.
 */
function identityKeysOf(certificates: Record<string, string>): Map<string, KeyObject | string> {
  const keys = new Map<string, KeyObject | string>();
  for (const [id, pem] of Object.entries(certificates)) {
    let key: KeyObject | string = pem;
    try {
      key = identityCertificateKeys.get(pem, (text) => new X509Certificate(text).publicKey);
    } catch (error) {
      // Unreadable as a certificate: passed on as text, for the library to exclude the silo with its typed reason
      // (IDENTITY_KEY_UNSUPPORTED) exactly as it did before this cache.
      if (!(error instanceof Error)) throw error;
    }
    keys.set(id, key);
  }
  return keys;
}

/**
 * The round went on without this participant (the hub closed the stage it was at, or failed the session): its state
 * is deleted. Transports throw it for the hub's "not at this stage" and "round closed" answers.
 */
export class SecAggDropout extends Error {
  override readonly name = 'SecAggDropout';
}

export interface ParticipantOptions {
  transport: SecAggTransport;
  store: SecAggStateStore;
  participantId: string;
  /** The silo's enrolled private key (PEM): it signs the round's ephemeral public keys. */
  identityKeyPem: string;
  random?: SecAggRandom;
  /** The noise shares' source (tests only: a seeded one); default the OS CSPRNG. */
  noiseRandom?: RandomSource;
  /** Waits between polls of a stage that has not closed yet (ms); at most until the stage's deadline. */
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * One silo's side of a secure-aggregation round (docs/secure-aggregation.md, "In the agent"), resumable: every state
 * the library returns is written to the agent's state directory (mode 0600) BEFORE the message it goes with is sent,
 * and the stored message is re-sent after a restart, so a restarted agent repeats exactly what it may already have
 * sent and the hub either takes it or says it already has it. A restart that finds the round past the stage it
 * stopped at drops out cleanly: its state is deleted and nothing else is sent.
 */
export class SecAggParticipant {
  private readonly random: SecAggRandom;
  private readonly noiseRandom: RandomSource;
  private readonly pollMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly o: ParticipantOptions) {
    this.random = o.random ?? cryptoRandom;
    this.noiseRandom = o.noiseRandom ?? defaultRandomSource();
    this.pollMs = o.pollMs ?? 1000;
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /**
   * Time spent computing for the protocol so far (ms): key generation and signatures, key agreement and Shamir
   * sharing, quantising, noise, masking and encoding, and the unmasking answer. Waiting for the hub and the other
   * silos, and the transfers, are not counted: this is what secure aggregation adds to the silo's own work.
   */
  get computationMs(): number {
    return this.computing;
  }

  private computing = 0;

  private timed<T>(work: () => T): T {
    const started = performance.now();
    try {
      return work();
    } finally {
      this.computing += performance.now() - started;
    }
  }

  private async timedAsync<T>(work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await work();
    } finally {
      this.computing += performance.now() - started;
    }
  }

  /** Stages 0 and 1: advertises keys, waits for the neighbours', sends the encrypted shares. Before training. */
  prepare(): Promise<void> {
    return this.leavingOnDropout(() => this.advertiseAndShare());
  }

  private async advertiseAndShare(): Promise<void> {
    let stored = this.o.store.load();
    if (!stored) {
      const session = await this.o.transport.session();
      const config = parseSecAggConfig(session.config);
      const { state, advertisement } = this.timed(() =>
        advertiseKeys({
          config,
          participantId: this.o.participantId,
          identityKey: identityPrivateKeys.get(this.o.identityKeyPem, (pem) => createPrivateKey(pem)),
          random: this.random,
        }),
      );
      stored = { phase: 'advertised', state, message: { ...advertisement } };
      this.o.store.save(stored);
    }
    if (stored.phase === 'advertised') {
      await this.o.transport.advertise(stored.message);
      // Test only (inert unless TESSERA_AGENT_FAULT_POINT names it): a silo lost right after advertising its keys.
      agentFaultPoint('secagg-advertised');
      const ads = await this.poll(() => this.o.transport.advertisements());
      const advertised = stored.state;
      const { state, message } = await this.timedAsync(() =>
        shareKeys(advertised, {
          advertisements: ads.advertisements,
          // From the hub: see the threat model for what a hub that runs the CA can do with them.
          identityKeys: identityKeysOf(ads.identityCertificates),
          random: this.random,
        }),
      );
      stored = { phase: 'shared', state, message: { ...message } };
      this.o.store.save(stored);
    }
    if (stored.phase === 'shared') {
      await this.o.transport.share(stored.message);
      // Test only: a silo lost once its shares were taken, before it trains and uploads its masked input.
      agentFaultPoint('secagg-shared');
    }
  }

  /**
   * Stage 2: quantises the update (clip, scale, stochastic rounding), masks it with the routed shares and uploads it.
   * After this the silo's own mask key and seed are forgotten (only the neighbours' shares can rebuild them).
   */
  contribute(
    update: Float32Array | Float64Array,
    noise: NoiseShareRequest | null = null,
  ): Promise<ContributionTrace | null> {
    return this.leavingOnDropout(() => this.maskAndUpload(update, noise));
  }

  private async maskAndUpload(
    update: Float32Array | Float64Array,
    noise: NoiseShareRequest | null,
  ): Promise<ContributionTrace | null> {
    // Uploaded before a restart: the hub holds the masked input; nothing is masked or sent again.
    if (this.o.store.load()?.phase === 'uploaded') return null;
    let stored = this.required(['shared', 'masked']);
    let trace: ContributionTrace | null = null;
    if (stored.phase === 'shared') {
      const routed = await this.poll(() => this.o.transport.routedShares());
      const shared = stored.state;
      const { config } = shared;
      const noisePlan = noise === null ? null : noiseShareFor(config, noise);
      const masked = this.timed(() => {
        const { vector: input, trace: t } = quantise(update, config, this.random);
        if (noisePlan !== null) {
          // The exact discrete Gaussian (Karney), from the OS CSPRNG: this silo's share of the round's noise.
          addNoiseShare(
            input,
            latticeIntegers(input.length, noisePlan.siloSigma, this.noiseRandom),
            config.modulusBits,
          );
        }
        const { state, header, vector } = maskInput(shared, { shares: routed.shares, input });
        const frame = encodeMaskedInputFrame({ ...header }, encodeMaskedVector(vector, config.modulusBits));
        return { state, frame, quantised: t };
      });
      trace = { ...masked.quantised, noise: noisePlan };
      stored = { phase: 'masked', state: masked.state, frame: Buffer.from(masked.frame).toString('base64') };
      this.o.store.save(stored);
    }
    if (stored.phase !== 'masked') throw new SecAggDropout('The participant state is not masked after masking.');
    const frame = Buffer.from(stored.frame, 'base64');
    await this.o.transport.uploadMaskedInput(frame);
    this.o.store.save({ phase: 'uploaded', state: stored.state });
    // Test only: a silo lost after its masked input was taken, before it reads the unmasking request.
    agentFaultPoint('secagg-uploaded');
    return trace;
  }

  /** Stage 3: answers the hub's unmasking request (deterministic, so answering again after a restart is safe). */
  unmask(): Promise<'answered' | 'not-asked'> {
    return this.leavingOnDropout(() => this.reveal());
  }

  private async reveal(): Promise<'answered' | 'not-asked'> {
    const stored = this.required(['uploaded', 'masked']);
    const view = await this.poll(() => this.o.transport.unmaskingRequest());
    if (view.request === null) {
      this.o.store.remove();
      return 'not-asked';
    }
    const request = view.request;
    const { state, response } = this.timed(() => revealShares(stored.state, request));
    // What was revealed is kept before it is sent: a later request must classify everyone alike.
    this.o.store.save({ phase: 'uploaded', state });
    await this.o.transport.answerUnmasking({ ...response });
    this.o.store.remove();
    return 'answered';
  }

  /** Leaves the round: forgets its state (a dropout the hub handles as the protocol allows). */
  drop(): void {
    this.o.store.remove();
  }

  private required<P extends StoredParticipant['phase']>(phases: P[]): Extract<StoredParticipant, { phase: P }> {
    const stored = this.o.store.load();
    if (!stored || !(phases as string[]).includes(stored.phase)) {
      throw new SecAggDropout(
        `No secure-aggregation state at ${phases.join(' or ')} for this round (found ${stored?.phase ?? 'none'}).`,
      );
    }
    return stored as Extract<StoredParticipant, { phase: P }>;
  }

  /**
   * A dropout (the hub says the round went on without us) forgets this round's state, then is rethrown. So does too
   * few neighbours left to share with or to mask with (TOO_FEW_NEIGHBOURS, e.g. all but t − 1 of the others lost after
   * advertising): the library refuses before anything of this stage is sent, and the silo cannot take part safely, so
   * it leaves the round rather than retry a step that cannot succeed.
   */
  private async leavingOnDropout<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      const dropout =
        error instanceof SecAggException && error.code === SecAggErrorCode.TooFewNeighbours
          ? new SecAggDropout(error.message)
          : error;
      if (dropout instanceof SecAggDropout) this.o.store.remove();
      throw dropout;
    }
  }

  /** Reads a relayed stage until the hub has closed the previous one (the hub may hold each read: a long poll). */
  private async poll<T extends { ready: boolean }>(read: () => Promise<T>): Promise<Extract<T, { ready: true }>> {
    for (;;) {
      const asked = Date.now();
      const view = await read();
      if (view.ready) return view as Extract<T, { ready: true }>;
      const until =
        'until' in view && typeof view.until === 'string' ? Date.parse(view.until) - Date.now() : this.pollMs;
      // A hub that held the read (a long poll) has already waited: ask again at once. One that answered at once is
      // asked again after pollMs, or at the stage's deadline if sooner.
      const waited = Date.now() - asked;
      await this.sleep(Math.max(10, Math.min(this.pollMs, until) - waited));
    }
  }
}
