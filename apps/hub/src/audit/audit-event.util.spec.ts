import { computeRecordHash, GENESIS_PREV_HASH } from '@tessera/audit';
import { describe, expect, it } from 'vitest';
import { AuditRecordRefusedError, isSecretFieldName, normalizeAuditEvent } from './audit-event.util';
import type { AuditEvent } from './audit-trail';

const actor = { type: 'user', id: 'u-1', name: 'alice' } as const;

function event(details: Record<string, unknown>): AuditEvent {
  return { actor, action: 'test.action', details };
}

describe('isSecretFieldName', () => {
  it.each(['password', 'newPassword', 'passphrase', 'token', 'accessToken', 'enrollment_token', 'privateKey'])(
    'refuses %s',
    (name) => expect(isSecretFieldName(name)).toBe(true),
  );
  it.each(['private_key_pem', 'clientSecret', 'API-Key', 'Authorization', 'jwt', 'sessionKey'])('refuses %s', (name) =>
    expect(isSecretFieldName(name)).toBe(true),
  );
  // Names the hub emits today (silos.service.ts, hub-pki.service.ts, accounts.service.ts) must pass.
  it.each(['tokenExpiresAt', 'tokenHash', 'username', 'fingerprintSha256', 'publicKeyPem', 'keyId', 'reason'])(
    'accepts %s',
    (name) => expect(isSecretFieldName(name)).toBe(false),
  );
});

describe('normalizeAuditEvent', () => {
  it('refuses a secret-named key at any depth, naming its path', () => {
    expect(() => normalizeAuditEvent(event({ password: 'x' }))).toThrow(AuditRecordRefusedError);
    expect(() => normalizeAuditEvent(event({ outer: [{ accessToken: 'x' }] }))).toThrow(
      /details\.outer\[0\]\.accessToken/,
    );
  });

  it('refuses a PEM private key in any value', () => {
    const pem = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI...\n-----END PRIVATE KEY-----\n';
    expect(() => normalizeAuditEvent(event({ note: pem }))).toThrow(/PEM private key/);
    expect(() => normalizeAuditEvent(event({ note: pem.replace(/PRIVATE/g, 'ENCRYPTED PRIVATE') }))).toThrow(
      AuditRecordRefusedError,
    );
  });

  it('refuses non-JSON and oversized details', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => normalizeAuditEvent(event(cycle))).toThrow(AuditRecordRefusedError);
    expect(() => normalizeAuditEvent(event({ n: 10n }))).toThrow(AuditRecordRefusedError);
    expect(() => normalizeAuditEvent(event({ blob: 'x'.repeat(20_000) }))).toThrow(/exceed/);
  });

  it('gives details JSON meaning: Dates as ISO strings, undefined members dropped', () => {
    const n = normalizeAuditEvent({
      actor,
      action: 'a.b',
      subject: { siloId: 's-1', studyId: undefined },
      details: { at: new Date('2025-01-31T09:00:00.000Z'), gone: undefined, keep: [1, null, 'x'] },
    });
    expect(n.details).toEqual({ at: '2025-01-31T09:00:00.000Z', keep: [1, null, 'x'] });
    expect(n.subject).toEqual({ siloId: 's-1' });
    expect(n.actor).toEqual(actor);
  });

  it('makes NUL and lone surrogates storable and hashable (a login attempt with such a username is recorded)', () => {
    const n = normalizeAuditEvent({
      actor: { type: 'user', id: 'unknown', name: 'a\u0000b\ud800' },
      action: 'auth.login.failed',
      details: { username: 'a\u0000b\ud800', 'k\u0000': '\udc00ok' },
    });
    expect(n.actor.name).toBe('a\uFFFDb\uFFFD');
    expect(n.details).toEqual({ username: 'a\uFFFDb\uFFFD', 'k\uFFFD': '\uFFFDok' });
    // Well-formed pairs are kept as they are.
    expect(normalizeAuditEvent(event({ emoji: '\ud83d\ude00' })).details).toEqual({ emoji: '😀' });
    const hash = computeRecordHash({
      seq: 1,
      prevHash: GENESIS_PREV_HASH,
      time: '2025-01-31T09:00:00.000Z',
      ...n,
    });
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
  });
});
