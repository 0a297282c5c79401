import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';

import { checkAdvertisement, signAdvertisement } from './advertisement';
import { toBase64 } from './encoding.util';
import { collectAdvertisements } from './hub-collection';
import { generateX25519KeyPair } from './key-agreement';
import { shareKeys } from './participant';
import { secAggConfigHash } from './parameters';
import { ExclusionReason } from './secagg.exception';
import {
  expectedSum,
  identityKeys,
  publicDirectory,
  runRoundUntilUnmasking,
  seededRandom,
  siloIds,
  testConfig,
  testUpdates,
  unmaskRun,
} from './secagg-round.test-util';

const ids = siloIds(6);
const keys = identityKeys(ids, 'rsa'); // the PKI's key type
const directory = publicDirectory(keys);
const config = testConfig({ participants: ids, threshold: 3, vectorLength: 200 });
const updates = testUpdates(ids, config.vectorLength);
const [a, b] = ids;

describe('a participant whose key signature does not verify', () => {
  it('is excluded by the hub with SIGNATURE_INVALID and the round completes without it', async () => {
    const impostor = new Map([[a!, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey]]);
    const run = await runRoundUntilUnmasking({ config, keys, updates, signingKeyOverride: impostor });
    expect(run.exclusions).toEqual([
      expect.objectContaining({ participantId: a, stage: 'advertise', reason: ExclusionReason.SignatureInvalid }),
    ]);
    expect(run.advertised.map((x) => x.participantId)).not.toContain(a);
    const others = ids.slice(1);
    expect(Array.from(await unmaskRun(run))).toEqual(Array.from(expectedSum(run, others)));
  });

  it('is excluded by its neighbours themselves when the hub relays it anyway: no share is encrypted to it', async () => {
    const run = await runRoundUntilUnmasking({ config, keys, updates });
    // A hub that swaps a's mask key for one of its own (to compute a's pairwise masks) cannot re-sign it.
    const hubKey = generateX25519KeyPair(seededRandom('hub'));
    const forged = run.advertised.map((x) =>
      x.participantId === a ? { ...x, maskPublicKey: toBase64(hubKey.publicKey) } : x,
    );
    const state = run.advertisedStates.get(b!);
    if (state === undefined) throw new Error('missing state');
    const out = await shareKeys(state, { advertisements: forged, identityKeys: directory });
    expect(out.exclusions).toEqual([
      expect.objectContaining({ participantId: a, reason: ExclusionReason.SignatureInvalid }),
    ]);
    expect(out.message.shares.map((s) => s.to)).not.toContain(a);
    expect(out.message.shares).toHaveLength(ids.length - 2);
  });

  it('signed but with a small-order public key: excluded by its neighbours own key agreement, before any share', async () => {
    const run = await runRoundUntilUnmasking({ config, keys, updates });
    const hash = secAggConfigHash(config);
    const identityKey = keys.get(a!);
    const state = run.advertisedStates.get(b!);
    if (identityKey === undefined || state === undefined) throw new Error('missing');
    const genuine = generateX25519KeyPair(seededRandom('genuine')).publicKey;
    const zero = new Uint8Array(32); // u = 0, of order 1: the agreed secret would be all zeros
    for (const [mask, encryption] of [
      [zero, genuine],
      [genuine, zero],
    ]) {
      const signed = signAdvertisement(hash, a!, mask!, encryption!, identityKey);
      const relayed = run.advertised.map((x) => (x.participantId === a ? signed : x));
      const out = await shareKeys(state, { advertisements: relayed, identityKeys: directory });
      expect(out.exclusions).toEqual([
        expect.objectContaining({ participantId: a, reason: ExclusionReason.Malformed }),
      ]);
      expect(out.message.shares.map((x) => x.to)).not.toContain(a);
      expect(out.message.shares).toHaveLength(ids.length - 2);
    }
  });

  it('is told apart from other faults: unknown key, other round, outside the roster, duplicate, malformed', async () => {
    const run = await runRoundUntilUnmasking({ config, keys, updates });
    const hash = secAggConfigHash(config);
    const genuine = run.advertised[0]!;
    const reasonOf = (input: unknown, dir = directory) => {
      const checked = checkAdvertisement(config, hash, input, dir);
      return checked.ok ? 'ok' : checked.exclusion.reason;
    };
    expect(reasonOf(genuine)).toBe('ok');
    expect(reasonOf(genuine, new Map())).toBe(ExclusionReason.IdentityKeyMissing);
    expect(reasonOf({ ...genuine, configHash: 'f'.repeat(64) })).toBe(ExclusionReason.ConfigMismatch);
    expect(reasonOf({ ...genuine, participantId: 'stranger' })).toBe(ExclusionReason.NotInRoster);
    expect(reasonOf({ ...genuine, signature: genuine.signature.slice(4) })).toBe(ExclusionReason.SignatureInvalid);
    expect(reasonOf({ ...genuine, maskPublicKey: toBase64(new Uint8Array(32)) })).toBe(ExclusionReason.Malformed);
    expect(reasonOf({ ...genuine, extra: true })).toBe(ExclusionReason.Malformed);
    const weak = new Map(directory).set(
      genuine.participantId,
      generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey,
    );
    expect(reasonOf(genuine, weak)).toBe(ExclusionReason.IdentityKeyUnsupported);
    const collected = collectAdvertisements(config, [...run.advertised, genuine], directory);
    expect(collected.exclusions).toEqual([
      expect.objectContaining({ participantId: genuine.participantId, reason: ExclusionReason.Duplicate }),
    ]);
    expect(collected.advertised).toHaveLength(ids.length);
  });
});
