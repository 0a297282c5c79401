import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { distributedNoiseMaxScale } from '@tessera/dp';
import { generateKeyPair, type KeyPairPem } from '@tessera/pki';
import { decodeMaskedInputFrame, type SecAggSessionView } from '@tessera/protocol';
import {
  checkMaskedInput,
  checkShareMessage,
  checkUnmaskingResponse,
  collectAdvertisements,
  createSecAggConfig,
  decodeMaskedVector,
  dequantiseSum,
  MaskedSumAccumulator,
  maxSafeScale,
  planUnmasking,
  routeShares,
  secAggConfigHash,
  unmaskSum,
  type KeyAdvertisement,
  type MaskedInputHeader,
  type SecAggConfig,
  type ShareKeysMessage,
  type ShareRouting,
  type UnmaskingPlan,
  type UnmaskingResponse,
} from '@tessera/secagg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { answerInProcess } from '../hub/study-transport';
import { SecAggDropout, SecAggParticipant, type SecAggTransport } from './secagg-participant';
import { SecAggStateStore } from './secagg-state-store';

const IDS = ['silo-a', 'silo-b', 'silo-c', 'silo-d'];
const M = 50;

/**
 * The hub's side of one round in memory, from @tessera/secagg's hub functions: a stage's relayed messages are ready
 * once every expected sender has sent, or when the test closes the stage (a deadline passing). Identical re-sends are
 * taken as the real hub takes them; a message for a closed stage is a dropout.
 */
class HubDouble {
  readonly config: SecAggConfig;
  ads = new Map<string, unknown>();
  advertised: KeyAdvertisement[] | null = null;
  shareMessages = new Map<string, ShareKeysMessage>();
  routing: ShareRouting | null = null;
  headers = new Map<string, MaskedInputHeader>();
  sum: MaskedSumAccumulator;
  plan: UnmaskingPlan | null = null;
  responses = new Map<string, UnmaskingResponse>();
  sent: Record<string, number> = {};

  constructor(
    private readonly keys: Map<string, KeyPairPem>,
    private readonly length = M,
    scale = maxSafeScale({ participantCount: 4, clipNorm: 5, modulusBits: 32 }),
  ) {
    this.config = createSecAggConfig({
      roundId: 'round-1',
      participants: IDS,
      neighbourCount: 3,
      threshold: 2,
      modulusBits: 32,
      clipNorm: 5,
      scale,
      vectorLength: length,
      roundSeed: 'cd'.repeat(32),
    });
    this.sum = new MaskedSumAccumulator(this.config);
  }

  closeAdvertise(): void {
    const identity = new Map([...this.keys].map(([id, k]) => [id, k.publicKeyPem]));
    this.advertised = collectAdvertisements(this.config, [...this.ads.values()], identity).advertised;
  }

  closeShare(): void {
    this.routing = routeShares(this.config, [...this.shareMessages.values()]);
  }

  closeUpload(): void {
    this.plan = planUnmasking(this.config, this.routing!, [...this.headers.values()]);
  }

  transport(id: string): SecAggTransport {
    const count = (what: string) => (this.sent[`${id} ${what}`] = (this.sent[`${id} ${what}`] ?? 0) + 1);
    const until = new Date(Date.now() + 60_000).toISOString();
    return {
      session: (): Promise<SecAggSessionView> =>
        answerInProcess(() => ({
          config: { ...this.config },
          configHash: secAggConfigHash(this.config),
          stage: 'advertise',
          deadlines: { advertise: until, share: until, upload: until, unmask: until },
          failure: null,
        })),
      advertise: (ad) =>
        answerInProcess(() => {
          count('advertise');
          if (this.advertised) throw new SecAggDropout('the advertise stage is closed');
          this.ads.set(id, ad);
          if (this.ads.size === IDS.length) this.closeAdvertise();
        }),
      advertisements: () =>
        answerInProcess(() =>
          this.advertised
            ? {
                ready: true as const,
                advertisements: this.advertised.map((a) => ({ ...a })),
                identityCertificates: Object.fromEntries([...this.keys].map(([k, v]) => [k, v.publicKeyPem])),
              }
            : { ready: false as const, stage: 'advertise' as const, until },
        ),
      share: (message) =>
        answerInProcess(() => {
          count('share');
          if (this.routing) throw new SecAggDropout('the share stage is closed');
          const checked = checkShareMessage(this.config, this.advertised!, message);
          if (!checked.ok) throw new Error(checked.exclusion.detail);
          this.shareMessages.set(id, checked.value);
          if (this.shareMessages.size === this.advertised!.length) this.closeShare();
        }),
      routedShares: () =>
        answerInProcess(() =>
          this.routing
            ? {
                ready: true as const,
                shares: this.routing.deliveries.find((d) => d.recipient === id)!.shares.map((s) => ({ ...s })),
              }
            : { ready: false as const, stage: 'share' as const, until },
        ),
      uploadMaskedInput: (frame) =>
        answerInProcess(() => {
          count('upload');
          if (this.plan) throw new SecAggDropout('the upload stage is closed');
          const { header, packedVector } = decodeMaskedInputFrame(frame);
          if (this.headers.has(id)) return; // an identical re-send after a restart
          const vector = decodeMaskedVector(packedVector, this.length, 32);
          const checked = checkMaskedInput(this.config, this.routing!, header, vector);
          if (!checked.ok) throw new Error(checked.exclusion.detail);
          this.sum.add(id, vector);
          this.headers.set(id, checked.value);
        }),
      unmaskingRequest: () =>
        answerInProcess(() =>
          this.plan
            ? {
                ready: true as const,
                request: this.plan.request.survivors.includes(id) ? { ...this.plan.request } : null,
              }
            : { ready: false as const, stage: 'upload' as const, until },
        ),
      answerUnmasking: (response) =>
        answerInProcess(() => {
          count('unmask');
          const checked = checkUnmaskingResponse(this.plan!, response);
          if (!checked.ok) throw new Error(checked.exclusion.detail);
          this.responses.set(id, checked.value);
        }),
    };
  }

  async unmasked(): Promise<Float64Array> {
    const total = await unmaskSum(
      this.config,
      { routing: this.routing!, advertised: this.advertised!, plan: this.plan! },
      [...this.responses.values()],
      this.sum.sum,
    );
    return dequantiseSum(total, this.config);
  }
}

const updateOf = (i: number) => Float32Array.from({ length: M }, (_, j) => Math.cos(i * 7 + j) * 0.2);

describe('the agent side of secure aggregation', () => {
  let dir: string;
  let keys: Map<string, KeyPairPem>;
  let hub: HubDouble;
  const task = (id: string) => ({ studyId: `study-${id}`, round: 1, attempt: 1 });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-secagg-agent-'));
    keys = new Map(IDS.map((id) => [id, generateKeyPair({ modulusBits: 2048 })]));
    hub = new HubDouble(keys);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const participant = (id: string, pollMs = 1) =>
    new SecAggParticipant({
      transport: hub.transport(id),
      store: new SecAggStateStore(join(dir, id), task(id)),
      participantId: id,
      identityKeyPem: keys.get(id)!.privateKeyPem,
      pollMs,
      sleep: () => new Promise((r) => setImmediate(r)),
    });

  it('runs every stage; a participant restarted after sharing resumes from its state file; the sum unmasks', async () => {
    await Promise.all(IDS.map((id) => participant(id).prepare()));
    // silo-b's process restarts: a new participant object on the same state directory carries on.
    const store = new SecAggStateStore(join(dir, 'silo-b'), task('silo-b'));
    expect(store.load()?.phase).toBe('shared');
    expect(statSync(store.file).mode & 0o777).toBe(0o600);
    const traces = await Promise.all(IDS.map((id, i) => participant(id).contribute(updateOf(i))));
    expect(traces.every((t) => t !== null && t.clipFactor === 1)).toBe(true);
    // silo-c restarts after uploading: preparing and contributing again send nothing new and keep its state.
    const uploads = hub.sent['silo-c upload'];
    await participant('silo-c').prepare();
    expect(await participant('silo-c').contribute(updateOf(99))).toBeNull();
    expect(hub.sent['silo-c upload']).toBe(uploads);
    hub.closeUpload();
    expect(await Promise.all(IDS.map((id) => participant(id).unmask()))).toEqual(IDS.map(() => 'answered'));
    const sum = await hub.unmasked();
    const bound = IDS.length / hub.config.scale;
    for (let j = 0; j < M; j++) {
      const expected = IDS.reduce((s, _, i) => s + updateOf(i)[j]!, 0);
      expect(Math.abs(sum[j]! - expected)).toBeLessThanOrEqual(bound + 1e-6);
    }
    // Every state file is gone once the round is done.
    for (const id of IDS) expect(new SecAggStateStore(join(dir, id), task(id)).load()).toBeNull();
  });

  it('asks again at once after a stage view the hub held (long poll), and after pollMs after one answered at once', async () => {
    const slept: number[] = [];
    const make = (id: string, holdMs: number) => {
      const transport = hub.transport(id);
      const advertisements = transport.advertisements.bind(transport);
      // The hub holds each read `holdMs` before answering, as a long poll does while the stage stays open.
      transport.advertisements = async () => {
        await new Promise((r) => setTimeout(r, holdMs));
        return advertisements();
      };
      return new SecAggParticipant({
        transport,
        store: new SecAggStateStore(join(dir, id), task(id)),
        participantId: id,
        identityKeyPem: keys.get(id)!.privateKeyPem,
        pollMs: 200,
        sleep: (ms: number) => {
          slept.push(ms);
          return new Promise((r) => setImmediate(r));
        },
      });
    };
    // silo-a prepares first: its reads find the stage open until the others have advertised.
    const first = make('silo-a', 250).prepare();
    await new Promise((r) => setTimeout(r, 600));
    expect(slept.length).toBeGreaterThan(0);
    expect(slept.every((ms) => ms === 10)).toBe(true); // held 250 ms ≥ pollMs: no pause of its own
    slept.length = 0;
    const second = make('silo-b', 0).prepare();
    await new Promise((r) => setTimeout(r, 50));
    expect(slept.length).toBeGreaterThan(0);
    expect(slept.every((ms) => ms > 10 && ms <= 200)).toBe(true); // answered at once: pollMs less the read time
    await Promise.all([first, second, ...IDS.slice(2).map((id) => participant(id).prepare())]);
  });

  it('counts the time it computes for the protocol, and nothing for a stage it does not redo', async () => {
    const participants = IDS.map((id) => participant(id));
    await Promise.all(participants.map((p) => p.prepare()));
    const afterSharing = participants.map((p) => p.computationMs);
    expect(afterSharing.every((ms) => ms > 0)).toBe(true); // key generation, signatures, agreement, Shamir
    await Promise.all(participants.map((p, i) => p.contribute(updateOf(i))));
    expect(participants.every((p, i) => p.computationMs > afterSharing[i]!)).toBe(true); // quantise, mask, encode
    // Restarted after uploading: nothing is masked again, so nothing is computed.
    const resumed = participant('silo-c');
    expect(await resumed.contribute(updateOf(99))).toBeNull();
    expect(resumed.computationMs).toBe(0);
    hub.closeUpload();
    await Promise.all(participants.map((p) => p.unmask()));
  });

  it('with distributed DP, each silo adds its noise share: the unmasked sum carries n shares (variance n·σ²)', async () => {
    const length = 20_000;
    const noise = { noiseMultiplier: 1.5, clipNorm: 5, shares: 2 };
    const scale = distributedNoiseMaxScale({
      participantCount: IDS.length,
      clipNorm: 5,
      modulusBits: 32,
      dimension: length,
      shares: 2,
      noiseMultiplier: 1.5,
    });
    hub = new HubDouble(keys, length, scale);
    await Promise.all(IDS.map((id) => participant(id).prepare()));
    const updates = IDS.map((_, i) => Float32Array.from({ length }, (_, j) => Math.sin(i * 3 + j) * 0.03));
    const traces = await Promise.all(IDS.map((id, i) => participant(id).contribute(updates[i]!, noise)));
    const sigma = traces[0]!.noise!.siloSigma;
    expect(traces.every((t) => t!.noise!.siloSigma === sigma && t!.noise!.epsilon <= 1 / 1.5)).toBe(true);
    hub.closeUpload();
    await Promise.all(IDS.map((id) => participant(id).unmask()));
    const sum = await hub.unmasked();
    // Residual in lattice units: the summed noise plus less than one rounding step per silo.
    const residual = Array.from({ length }, (_, j) => (sum[j]! - updates.reduce((a, u) => a + u[j]!, 0)) * scale);
    const mean = residual.reduce((a, b) => a + b, 0) / length;
    const variance = residual.reduce((a, r) => a + (r - mean) ** 2, 0) / (length - 1);
    const expected = IDS.length * sigma * sigma;
    expect(Math.abs(variance / expected - 1)).toBeLessThan(5 * Math.sqrt(2 / length));
    expect(Math.abs(mean)).toBeLessThan(5 * Math.sqrt(expected / length));
  });

  it('refuses to add noise sized for another clip norm or threshold than the round configures: drops out', async () => {
    await Promise.all(IDS.map((id) => participant(id).prepare()));
    const wrongClip = participant('silo-a').contribute(updateOf(0), { noiseMultiplier: 1, clipNorm: 1, shares: 2 });
    await expect(wrongClip).rejects.toThrow(/clip norm 5 and threshold 2 are not the plan's \(1, 2\)/);
    expect(new SecAggStateStore(join(dir, 'silo-a'), task('silo-a')).load()).toBeNull();
    const wrongT = participant('silo-b').contribute(updateOf(1), { noiseMultiplier: 1, clipNorm: 5, shares: 3 });
    await expect(wrongT).rejects.toBeInstanceOf(SecAggDropout);
    expect(hub.sent['silo-a upload']).toBeUndefined();
    expect(hub.sent['silo-b upload']).toBeUndefined();
  });

  it('re-sends the stored message after a crash between saving and sending, never a fresh one', async () => {
    // silo-a saved its advertisement and "crashed" before sending it.
    const crashing = hub.transport('silo-a');
    const first = new SecAggParticipant({
      transport: { ...crashing, advertise: () => Promise.reject(new Error('killed')) },
      store: new SecAggStateStore(join(dir, 'silo-a'), task('silo-a')),
      participantId: 'silo-a',
      identityKeyPem: keys.get('silo-a')!.privateKeyPem,
    });
    await expect(first.prepare()).rejects.toThrow('killed');
    const saved = JSON.parse(readFileSync(new SecAggStateStore(join(dir, 'silo-a'), task('silo-a')).file, 'utf8')) as {
      message: { maskPublicKey: string };
    };
    await Promise.all(IDS.map((id) => participant(id).prepare()));
    expect((hub.ads.get('silo-a') as { maskPublicKey: string }).maskPublicKey).toBe(saved.message.maskPublicKey);
  });

  it('drops out cleanly when the round went on without it: state deleted, nothing more sent', async () => {
    const preparing = Promise.all(IDS.slice(0, 3).map((id) => participant(id).prepare()));
    while (hub.ads.size < 3) await new Promise((r) => setImmediate(r));
    // silo-d was down past the advertise deadline: the hub closed the stage with three.
    hub.closeAdvertise();
    await preparing;
    const late = participant('silo-d');
    await expect(late.prepare()).rejects.toBeInstanceOf(SecAggDropout);
    expect(new SecAggStateStore(join(dir, 'silo-d'), task('silo-d')).load()).toBeNull();
    await expect(late.contribute(updateOf(3))).rejects.toThrow(/No secure-aggregation state at shared or masked/);
    expect(hub.sent['silo-d share']).toBeUndefined();
  });

  it('leaves the round, sending nothing, when too few neighbours shared to mask with (t sharers of a complete graph)', async () => {
    // silo-c and silo-d advertise, then are lost before sharing; the hub closes the share stage with silo-a and silo-b
    // (t = 2 sharers), each of which then has one mask partner: fewer than t.
    const lost = (id: string) =>
      new SecAggParticipant({
        transport: { ...hub.transport(id), share: () => Promise.reject(new Error('killed')) },
        store: new SecAggStateStore(join(dir, id), task(id)),
        participantId: id,
        identityKeyPem: keys.get(id)!.privateKeyPem,
        pollMs: 1,
        sleep: () => new Promise((r) => setImmediate(r)),
      });
    const preparing = [participant('silo-a').prepare(), participant('silo-b').prepare()];
    await Promise.all(['silo-c', 'silo-d'].map((id) => expect(lost(id).prepare()).rejects.toThrow('killed')));
    await Promise.all(preparing);
    hub.closeShare();
    expect(hub.routing!.sharers.map((s) => s.maskPartners.length)).toEqual([1, 1]);
    for (const [i, id] of ['silo-a', 'silo-b'].entries()) {
      const refused = participant(id).contribute(updateOf(i));
      await expect(refused).rejects.toBeInstanceOf(SecAggDropout);
      await expect(participant(id).contribute(updateOf(i))).rejects.toThrow(/No secure-aggregation state/);
      expect(new SecAggStateStore(join(dir, id), task(id)).load()).toBeNull();
    }
    expect(hub.sent['silo-a upload']).toBeUndefined();
    expect(hub.sent['silo-b upload']).toBeUndefined();
  });

  it('refuses a state file it cannot read, naming the file', () => {
    const store = new SecAggStateStore(join(dir, 'x'), task('x'));
    store.save({ phase: 'uploaded', state: {} as never });
    expect(store.load()?.phase).toBe('uploaded');
    writeFileSync(store.file, '{"phase":');
    expect(() => store.load()).toThrow(new RegExp(`secure-aggregation state ${store.file} is not JSON`));
    writeFileSync(store.file, '{"phase":"unknown"}');
    expect(() => store.load()).toThrow(/has no known phase/);
  });
});
