import { createPrivateKey, type KeyObject } from 'node:crypto';
import { appendRecord, type AuditRecord, type AuditRecordInput } from './audit-record';

/**
 * Ed25519 test keys from RFC 8032 §7.1 (https://www.rfc-editor.org/rfc/rfc8032#section-7.1), TEST 1 and TEST 2:
 * deterministic keys make signatures reproducible and spare the tests key generation.
 */
export const RFC8032_TEST1 = {
  secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
  public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
};
export const RFC8032_TEST2 = {
  secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
  public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
};

// PKCS #8 wrapping of a raw Ed25519 seed (RFC 8410 §7): fixed 16-byte DER prefix then the 32-byte seed.
const PKCS8_ED25519_PREFIX = '302e020100300506032b657004220420';
// SubjectPublicKeyInfo of a raw Ed25519 public key (RFC 8410 §4): fixed 12-byte DER prefix then the 32-byte key.
export const SPKI_ED25519_PREFIX = '302a300506032b6570032100';

export function ed25519KeyFromSeed(seedHex: string): KeyObject {
  return createPrivateKey({ key: Buffer.from(PKCS8_ED25519_PREFIX + seedHex, 'hex'), format: 'der', type: 'pkcs8' });
}

export function privatePem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Body of the i-th record (0-based) of a synthetic study's audit trail. */
export function recordInput(i: number): AuditRecordInput {
  const actions = [
    'study.created',
    'silo.enrolled',
    'plan.approved',
    'round.opened',
    'update.accepted',
    'round.closed',
  ];
  const second = String(i % 60).padStart(2, '0');
  const minute = String(Math.floor(i / 60) % 60).padStart(2, '0');
  return {
    time: `2025-03-01T10:${minute}:${second}.000Z`,
    actor:
      i % 3 === 0
        ? { type: 'user', id: `user-${i % 4}`, name: 'Ada Admin' }
        : i % 3 === 1
          ? { type: 'silo', id: `silo-${i % 5}` }
          : { type: 'system', id: 'hub' },
    action: actions[i % actions.length]!,
    subject: { studyId: 'study-1', ...(i % 2 === 0 ? { siloId: `silo-${i % 5}` } : { roundId: `round-${i}` }) },
    details: { index: i, epsilonSpent: i / 8, note: i % 4 === 0 ? 'é€😀' : null, tags: ['a', i] },
  };
}

/** A valid chain of n records starting at genesis. */
export function buildChain(n: number): AuditRecord[] {
  const records: AuditRecord[] = [];
  for (let i = 0; i < n; i++) records.push(appendRecord(records.at(-1) ?? null, recordInput(i)));
  return records;
}

export function clone<T>(value: T): T {
  return structuredClone(value);
}

/** Changes one hex digit: a different but still well-formed hash. */
export function flipHex(hex: string, at = 0): string {
  const c = hex[at] === '0' ? '1' : '0';
  return hex.slice(0, at) + c + hex.slice(at + 1);
}

/** Flips one bit of a base64 signature: same length, different bytes. */
export function flipSignature(signature: string): string {
  const bytes = Buffer.from(signature, 'base64');
  bytes[10]! ^= 0x01;
  return bytes.toString('base64');
}
