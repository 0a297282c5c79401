import { describe, expect, it } from 'vitest';
import { generateWebhookSecret, signatureHeader, verifyWebhook, webhookSignature } from './webhook-signature.util';

const SECRET = 'whsec_test-secret';
const BODY = '{"id":"audit-7","type":"study.started"}';
const TS = 1_767_225_600;

describe('webhook signatures', () => {
  it('is the HMAC-SHA256 of "timestamp.body" (vector from `openssl dgst -sha256 -hmac`)', () => {
    expect(webhookSignature(SECRET, TS, BODY)).toBe('c329c25232252f32a244d841b2b03cd4b71accdaf3437b2b8f4483e58cb56f64');
    expect(signatureHeader(SECRET, TS, BODY)).toBe(
      'v1=c329c25232252f32a244d841b2b03cd4b71accdaf3437b2b8f4483e58cb56f64',
    );
  });

  it('refuses a timestamp that is not whole seconds', () => {
    expect(() => webhookSignature(SECRET, 1.5, BODY)).toThrow(RangeError);
    expect(() => webhookSignature(SECRET, -1, BODY)).toThrow(RangeError);
  });

  const verify = (over: Partial<Parameters<typeof verifyWebhook>[0]> = {}) =>
    verifyWebhook({
      secret: SECRET,
      body: BODY,
      timestampHeader: String(TS),
      signatureHeader: signatureHeader(SECRET, TS, BODY),
      nowSeconds: TS + 10,
      ...over,
    });

  it('accepts its own signature within the tolerance, also among other values of the header', () => {
    expect(verify()).toEqual({ valid: true });
    expect(verify({ signatureHeader: `v0=abc, ${signatureHeader(SECRET, TS, BODY)}` })).toEqual({ valid: true });
    expect(verify({ nowSeconds: TS - 300 })).toEqual({ valid: true });
  });

  it('refuses a replay outside the tolerance, a changed body, another secret and malformed headers', () => {
    expect(verify({ nowSeconds: TS + 301 })).toEqual({ valid: false, reason: 'stale-timestamp' });
    expect(verify({ nowSeconds: TS + 60, toleranceSeconds: 30 })).toEqual({ valid: false, reason: 'stale-timestamp' });
    expect(verify({ body: BODY.replace('7', '8') })).toEqual({ valid: false, reason: 'bad-signature' });
    expect(verify({ secret: 'whsec_other' })).toEqual({ valid: false, reason: 'bad-signature' });
    // The timestamp is signed: moving it forward to pass the replay check breaks the signature.
    expect(verify({ timestampHeader: String(TS + 5) })).toEqual({ valid: false, reason: 'bad-signature' });
    expect(verify({ timestampHeader: 'yesterday' })).toEqual({ valid: false, reason: 'malformed-timestamp' });
    expect(verify({ timestampHeader: undefined })).toEqual({ valid: false, reason: 'malformed-timestamp' });
    expect(verify({ signatureHeader: 'v1=zz' })).toEqual({ valid: false, reason: 'malformed-signature' });
    expect(verify({ signatureHeader: undefined })).toEqual({ valid: false, reason: 'malformed-signature' });
  });

  it('generates distinct 256-bit secrets', () => {
    const a = generateWebhookSecret();
    const b = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
  });
});
