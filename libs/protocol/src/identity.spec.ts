import { describe, expect, it } from 'vitest';
import { decodeEnrollmentBundle, encodeEnrollmentBundle, type EnrollmentBundle } from './identity';

function bundle(overrides: Partial<EnrollmentBundle> = {}): EnrollmentBundle {
  return {
    format: 'tessera.enrollment-bundle/1',
    siloId: '2f1c3a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b',
    siloName: 'Cleveland',
    enrollUrl: 'https://127.0.0.1:8444',
    hubSiloUrl: 'https://127.0.0.1:8443',
    token: 'A'.repeat(43),
    caFingerprintSha256: 'ab'.repeat(32),
    expiresAt: '2026-11-23T08:00:00.000Z',
    ...overrides,
  };
}

describe('enrollment bundle', () => {
  it('round-trips through its one-line form and through plain JSON', () => {
    const b = bundle();
    expect(decodeEnrollmentBundle(encodeEnrollmentBundle(b))).toEqual(b);
    expect(decodeEnrollmentBundle(JSON.stringify(b))).toEqual(b);
  });

  it('names the bad field', () => {
    expect(() => decodeEnrollmentBundle(JSON.stringify(bundle({ caFingerprintSha256: 'xyz' })))).toThrow(
      /caFingerprintSha256/,
    );
    expect(() => decodeEnrollmentBundle(JSON.stringify({ ...bundle(), extra: 1 }))).toThrow(/extra/);
    expect(() => decodeEnrollmentBundle('%%%')).toThrow(/neither JSON nor base64url/);
  });
});
