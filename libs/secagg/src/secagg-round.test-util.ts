// Builders for the secagg specs: a reproducible random source, silos with identity keys, and a driver that runs one
// round through the library's own participant and hub functions, with a participant leaving at a chosen stage.
// Every message and state crosses a JSON round trip, as it would through the hub's database and the network.

import { createCipheriv, createHash, createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto';

import { IdentityKeyDirectory } from './identity-signature';
import {
  checkMaskedInput,
  checkShareMessage,
  collectAdvertisements,
  routeShares,
  ShareRouting,
} from './hub-collection';
import { MaskedSumAccumulator } from './masked-sum';
import { KeyAdvertisement, MaskedInputHeader, ShareKeysMessage, UnmaskingResponse } from './messages';
import { advertiseKeys, maskInput, shareKeys } from './participant';
import { revealShares } from './participant-reveal';
import { AdvertisedState, MaskedState, SharedState } from './participant-state';
import { createSecAggConfig, SecAggConfig } from './parameters';
import { quantise } from './quantisation';
import { SecAggRandom } from './random-source';
import { ParticipantExclusion, SecAggErrorCode, SecAggException } from './secagg.exception';
import { checkUnmaskingResponse, planUnmasking, UnmaskingPlan, unmaskSum } from './unmasking';

/** A reproducible stream: AES-256-CTR under SHA-256(seed). Tests only: anyone with the seed predicts it. */
export function seededRandom(seed: string): SecAggRandom {
  const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update(seed).digest(), Buffer.alloc(16));
  return {
    fill(bytes: Uint8Array): void {
      bytes.set(cipher.update(Buffer.alloc(bytes.length)));
    },
  };
}

/** Lowercase UUID-like silo ids in a fixed order (the roster's order is by id). */
export function siloIds(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`);
}

/** Identity key pairs per silo: Ed25519 by default (fast), RSA-2048 like the PKI's silo keys on request. */
export function identityKeys(
  ids: readonly string[],
  type: 'ed25519' | 'rsa' | 'ec' = 'ed25519',
): Map<string, KeyObject> {
  return new Map(
    ids.map((id) => {
      const pair =
        type === 'rsa'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 })
          : type === 'ec'
            ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
            : generateKeyPairSync('ed25519');
      return [id, pair.privateKey];
    }),
  );
}

/** The public halves, as the hub and the agents would know them from the silos' certificates. */
export function publicDirectory(keys: ReadonlyMap<string, KeyObject>): IdentityKeyDirectory {
  return new Map(
    [...keys].map(([id, key]) => [id, createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString()]),
  );
}

/** A configuration for tests: complete graph and majority threshold unless told otherwise. */
export function testConfig(overrides: Partial<SecAggConfig> & { participants: string[] }): SecAggConfig {
  const n = overrides.participants.length;
  return createSecAggConfig({
    roundId: 'round-1',
    neighbourCount: n - 1,
    threshold: Math.floor((n - 1) / 2) + 1,
    modulusBits: 32,
    clipNorm: 1,
    scale: 2 ** 20,
    vectorLength: 1000,
    roundSeed: createHash('sha256').update('seed').digest('hex'),
    ...overrides,
  });
}

/** Float updates with L2 norm below 1 (so clipping leaves them alone), reproducible from a seed. */
export function testUpdates(ids: readonly string[], length: number, seed = 'updates'): Map<string, Float32Array> {
  const random = seededRandom(seed);
  return new Map(
    ids.map((id) => {
      const words = new Uint32Array(length);
      random.fill(new Uint8Array(words.buffer));
      const x = Float32Array.from(words, (w) => (w / 2 ** 32 - 0.5) * (1.8 / Math.sqrt(length)));
      return [id, x];
    }),
  );
}

/** The stage after which a participant stops answering. */
export type DropStage = 'before-advertising' | 'after-advertising' | 'after-sharing' | 'after-uploading';

export interface RoundRun {
  config: SecAggConfig;
  quantised: Map<string, Uint32Array>;
  advertised: KeyAdvertisement[];
  /** Participant states after each step, by id (after JSON round trips). */
  advertisedStates: Map<string, AdvertisedState>;
  sharedStates: Map<string, SharedState>;
  shareMessages: ShareKeysMessage[];
  routing: ShareRouting;
  uploads: MaskedInputHeader[];
  accumulator: MaskedSumAccumulator;
  masked: Map<string, { state: MaskedState; vector: Uint32Array }>;
  exclusions: ParticipantExclusion[];
  plan: UnmaskingPlan;
  responses: UnmaskingResponse[];
  /** Participants that refused a step themselves (e.g. TOO_FEW_NEIGHBOURS), with the code. */
  refusals: Map<string, SecAggErrorCode>;
}

const viaJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/**
 * Runs rounds 0–3 up to the collected unmasking responses. `drop` says who leaves after which stage; `tamper` may
 * rewrite what the hub relays. Returns everything needed to unmask (or to inspect a failure).
 */
export async function runRoundUntilUnmasking(options: {
  config: SecAggConfig;
  keys: ReadonlyMap<string, KeyObject>;
  updates: ReadonlyMap<string, Float32Array>;
  drop?: ReadonlyMap<string, DropStage>;
  signingKeyOverride?: ReadonlyMap<string, KeyObject>;
  seed?: string;
}): Promise<RoundRun> {
  const { config, keys, updates } = options;
  const drop = options.drop ?? new Map<string, DropStage>();
  const random = seededRandom(options.seed ?? 'round');
  const directory = publicDirectory(keys);
  const quantised = new Map([...updates].map(([id, x]) => [id, quantise(x, config, random).vector]));
  const active = (stage: DropStage) => (id: string) => drop.get(id) !== stage;
  const exclusions: ParticipantExclusion[] = [];
  const refusals = new Map<string, SecAggErrorCode>();

  const advertising = config.participants.filter(active('before-advertising'));
  const states0 = new Map<string, AdvertisedState>();
  const submitted: KeyAdvertisement[] = [];
  for (const id of advertising) {
    const identityKey = options.signingKeyOverride?.get(id) ?? keys.get(id);
    if (identityKey === undefined) throw new Error(`no key for ${id}`);
    const { state, advertisement } = advertiseKeys({ config: viaJson(config), participantId: id, identityKey, random });
    states0.set(id, viaJson(state));
    submitted.push(viaJson(advertisement));
  }
  const collected = collectAdvertisements(config, submitted, directory);
  exclusions.push(...collected.exclusions);
  const advertised = viaJson(collected.advertised);

  const states1 = new Map<string, SharedState>();
  const shareMessages: ShareKeysMessage[] = [];
  for (const id of advertised.map((a) => a.participantId).filter(active('after-advertising'))) {
    const state = states0.get(id);
    if (state === undefined) continue;
    const out = await refusing(id, refusals, () =>
      shareKeys(state, { advertisements: advertised, identityKeys: directory, random }),
    );
    if (out === undefined) continue;
    const checked = checkShareMessage(config, advertised, viaJson(out.message));
    if (!checked.ok) {
      exclusions.push(checked.exclusion);
      continue;
    }
    states1.set(id, viaJson(out.state));
    shareMessages.push(checked.value);
  }
  const routing = viaJson(routeShares(config, shareMessages));

  const accumulator = new MaskedSumAccumulator(config);
  const uploads: MaskedInputHeader[] = [];
  const masked = new Map<string, { state: MaskedState; vector: Uint32Array }>();
  for (const { recipient, shares } of routing.deliveries) {
    const state = states1.get(recipient);
    const input = quantised.get(recipient);
    if (state === undefined || input === undefined || !active('after-sharing')(recipient)) continue;
    const out = await refusing(recipient, refusals, () => maskInput(state, { shares: viaJson(shares), input }));
    if (out === undefined) continue;
    const checked = checkMaskedInput(config, routing, viaJson(out.header), out.vector);
    if (!checked.ok) {
      exclusions.push(checked.exclusion);
      continue;
    }
    accumulator.add(recipient, out.vector);
    uploads.push(checked.value);
    masked.set(recipient, { state: viaJson(out.state), vector: out.vector });
  }

  const plan = viaJson(planUnmasking(config, routing, uploads));
  const responses: UnmaskingResponse[] = [];
  for (const id of plan.request.survivors.filter(active('after-uploading'))) {
    const entry = masked.get(id);
    if (entry === undefined) continue;
    const out = revealShares(entry.state, viaJson(plan.request));
    masked.set(id, { state: out.state, vector: entry.vector });
    const checked = checkUnmaskingResponse(plan, viaJson(out.response));
    if (!checked.ok) exclusions.push(checked.exclusion);
    else responses.push(checked.value);
  }
  return {
    config,
    quantised,
    advertised,
    advertisedStates: states0,
    sharedStates: states1,
    shareMessages,
    routing,
    uploads,
    accumulator,
    masked,
    exclusions,
    plan,
    responses,
    refusals,
  };
}

/** Runs a participant step; a typed refusal (the participant stops taking part) is recorded instead of thrown. */
async function refusing<T>(
  id: string,
  refusals: Map<string, SecAggErrorCode>,
  step: () => T | Promise<T>,
): Promise<T | undefined> {
  try {
    return await step();
  } catch (error) {
    if (!(error instanceof SecAggException) || error.code !== SecAggErrorCode.TooFewNeighbours) throw error;
    refusals.set(id, error.code);
    return undefined;
  }
}

/** The SecAggException code an action throws, or 'accepted' when it returns; other errors propagate. */
export function refusalCode(action: () => unknown): SecAggErrorCode | 'accepted' {
  try {
    action();
    return 'accepted';
  } catch (error) {
    if (error instanceof SecAggException) return error.code;
    throw error;
  }
}

/** Unmasks a run's sum with its own responses. */
export function unmaskRun(run: RoundRun): Promise<Uint32Array> {
  return unmaskSum(
    run.config,
    { routing: run.routing, advertised: run.advertised, plan: run.plan },
    run.responses,
    run.accumulator.sum,
  );
}

/** Σ of the given participants' quantised inputs mod 2^k: the expected unmasked sum. */
export function expectedSum(run: Pick<RoundRun, 'config' | 'quantised'>, ids: readonly string[]): Uint32Array {
  const mask = run.config.modulusBits === 32 ? -1 : 2 ** run.config.modulusBits - 1;
  const sum = new Uint32Array(run.config.vectorLength);
  for (const id of ids) {
    const q = run.quantised.get(id);
    if (q === undefined) throw new Error(`no input for ${id}`);
    for (let i = 0; i < sum.length; i++) sum[i] = (sum[i]! + q[i]!) & mask;
  }
  return sum;
}
