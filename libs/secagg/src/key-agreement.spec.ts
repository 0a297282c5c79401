import { createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { fromHex, toHex } from './encoding.util';
import {
  generateX25519KeyPair,
  hkdfSha256,
  x25519PrivateKeyObject,
  x25519PublicKey,
  x25519SharedSecret,
} from './key-agreement';
import { SecAggErrorCode } from './secagg.exception';
import { refusalCode, seededRandom } from './secagg-round.test-util';

const hex = (text: string): Uint8Array => fromHex(text, text.length / 2, 'vector');

describe('X25519 against RFC 7748', () => {
  // RFC 7748 section 6.1: Alice's and Bob's key pairs and their shared secret.
  const alicePrivate = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const alicePublic = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
  const bobPrivate = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
  const bobPublic = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
  const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';

  it('derives both public keys of section 6.1', () => {
    expect(toHex(x25519PublicKey(alicePrivate))).toBe(alicePublic);
    expect(toHex(x25519PublicKey(bobPrivate))).toBe(bobPublic);
  });

  it('agrees on the shared secret of section 6.1 in both directions', () => {
    expect(toHex(x25519SharedSecret(alicePrivate, hex(bobPublic)))).toBe(shared);
    expect(toHex(x25519SharedSecret(bobPrivate, hex(alicePublic)))).toBe(shared);
  });

  it('refuses a small-order peer key (all-zero shared secret) and wrong key lengths', () => {
    const zeroPoint = new Uint8Array(32); // the point of order 1 on the Montgomery curve (u = 0)
    expect(refusalCode(() => x25519SharedSecret(alicePrivate, zeroPoint))).toBe(SecAggErrorCode.MalformedMessage);
    expect(refusalCode(() => x25519SharedSecret(alicePrivate, new Uint8Array(31)))).toBe(
      SecAggErrorCode.MalformedMessage,
    );
  });

  it('makes key pairs whose public half matches the private half, reproducibly from the random source', () => {
    const a = generateX25519KeyPair(seededRandom('k'));
    const b = generateX25519KeyPair(seededRandom('k'));
    expect(toHex(a.privateKey)).toBe(toHex(b.privateKey));
    expect(toHex(x25519PublicKey(a.privateKey))).toBe(toHex(a.publicKey));
  });
});

describe('HKDF-SHA-256 against RFC 5869', () => {
  it('reproduces test case 1 (appendix A.1)', () => {
    const okm = hkdfSha256(
      new Uint8Array(22).fill(0x0b),
      hex('000102030405060708090a0b0c'),
      hex('f0f1f2f3f4f5f6f7f8f9'),
      42,
    );
    expect(toHex(okm)).toBe('3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
  });

  it('reproduces test case 3 (appendix A.3: empty salt and info)', () => {
    const okm = hkdfSha256(new Uint8Array(22).fill(0x0b), new Uint8Array(0), new Uint8Array(0), 42);
    expect(toHex(okm)).toBe('8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8');
  });
});

describe('raw keys imported as JSON Web Keys', () => {
  // The PKCS#8 and SPKI containers of RFC 8410 (id-X25519): the import the JWK path replaced, kept here as the reference.
  const pkcs8 = (d: Uint8Array) =>
    createPrivateKey({
      key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), d]),
      format: 'der',
      type: 'pkcs8',
    });
  const spki = (x: Uint8Array) =>
    createPublicKey({
      key: Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), x]),
      format: 'der',
      type: 'spki',
    });

  it('gives the same private key as the PKCS#8 import: public half and key agreement, whatever the placeholder x', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (d, peerD) => {
          const reference = pkcs8(d);
          const imported = x25519PrivateKeyObject(d);
          const referencePublic = createPublicKey(reference).export({ format: 'der', type: 'spki' }).subarray(-32);
          expect(toHex(x25519PublicKey(d))).toBe(toHex(referencePublic));
          const peer = createPublicKey(pkcs8(peerD)).export({ format: 'der', type: 'spki' }).subarray(-32);
          const expected = diffieHellman({ privateKey: reference, publicKey: spki(peer) });
          expect(toHex(x25519SharedSecret(imported, peer))).toBe(toHex(expected));
        },
      ),
      { numRuns: 50 },
    );
  });
});
