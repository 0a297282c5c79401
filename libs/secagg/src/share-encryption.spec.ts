import { describe, expect, it } from 'vitest';

import { fromHex, toHex } from './encoding.util';
import { generateX25519KeyPair } from './key-agreement';
import { SecAggErrorCode } from './secagg.exception';
import { refusalCode, seededRandom } from './secagg-round.test-util';
import { openShare, sealShare, shareAssociatedData, shareEncryptionKey } from './share-encryption';

describe('share encryption (AES-256-GCM)', () => {
  it('matches the GCM specification test case 14 (256-bit zero key, zero IV, one zero block)', () => {
    // McGrew and Viega, "The Galois/Counter Mode of Operation", appendix B, test case 14.
    const sealed = sealShare(new Uint8Array(32), new Uint8Array(12), new Uint8Array(16), new Uint8Array(0));
    expect(toHex(sealed)).toBe('cea7403d4d606b6e074ec5d3baf39d18' + 'd0d1c8a799996bf0265b98b5d48ab919');
  });

  const random = seededRandom('share-encryption');
  const alice = generateX25519KeyPair(random);
  const bob = generateX25519KeyPair(random);
  const hash = fromHex('ab'.repeat(32), 32, 'hash');

  it('gives both ends the same key, whichever computes it', () => {
    const fromAlice = shareEncryptionKey(alice.privateKey, bob.publicKey, hash, 'alice', 'bob');
    const fromBob = shareEncryptionKey(bob.privateKey, alice.publicKey, hash, 'bob', 'alice');
    expect(toHex(fromAlice)).toBe(toHex(fromBob));
  });

  it('binds the round, the sender and the receiver: a share moved to any other context does not open', () => {
    const key = shareEncryptionKey(alice.privateKey, bob.publicKey, hash, 'alice', 'bob');
    const nonce = new Uint8Array(12).fill(7);
    const plaintext = new Uint8Array(66).fill(42);
    const sealed = sealShare(key, nonce, plaintext, shareAssociatedData(hash, 'round-1', 'alice', 'bob'));
    expect(Array.from(openShare(key, nonce, sealed, shareAssociatedData(hash, 'round-1', 'alice', 'bob')))).toEqual(
      Array.from(plaintext),
    );
    for (const ad of [
      shareAssociatedData(hash, 'round-2', 'alice', 'bob'),
      shareAssociatedData(hash, 'round-1', 'bob', 'alice'),
      shareAssociatedData(hash, 'round-1', 'alice', 'carol'),
      shareAssociatedData(fromHex('cd'.repeat(32), 32, 'hash'), 'round-1', 'alice', 'bob'),
    ]) {
      expect(refusalCode(() => openShare(key, nonce, sealed, ad))).toBe(SecAggErrorCode.ShareDecryptionFailed);
    }
    const flipped = sealed.slice();
    flipped[3]! ^= 1;
    expect(
      refusalCode(() => openShare(key, nonce, flipped, shareAssociatedData(hash, 'round-1', 'alice', 'bob'))),
    ).toBe(SecAggErrorCode.ShareDecryptionFailed);
  });
});
