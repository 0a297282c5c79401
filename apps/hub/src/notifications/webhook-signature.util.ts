import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The headers of every webhook request (docs/operator-guide.md, "Notifications"). */
export const WEBHOOK_HEADERS = {
  /** The delivery's id: the same on every retry of one delivery, so a receiver can drop duplicates. */
  id: 'tessera-webhook-id',
  /** Unix time in whole seconds when this attempt was signed. */
  timestamp: 'tessera-webhook-timestamp',
  /** `v1=` and the hex HMAC-SHA256 of `timestamp.body` under the endpoint's secret. */
  signature: 'tessera-webhook-signature',
  event: 'tessera-webhook-event',
  /** 1 for the first attempt, 2 for the first retry... */
  attempt: 'tessera-webhook-attempt',
} as const;

/** How far a receiver should accept a timestamp from its own clock, in seconds (replay window). */
export const DEFAULT_TIMESTAMP_TOLERANCE_SECONDS = 300;

const SECRET_PREFIX = 'whsec_';

/** A new endpoint secret: 32 random bytes, base64url, with a prefix that makes it recognisable in a leak scan. */
export function generateWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64url');
}

/** The hex HMAC-SHA256 of `${timestamp}.${body}`, keyed by the secret's UTF-8 bytes (the whole string, prefix too). */
export function webhookSignature(secret: string, timestamp: number, body: string): string {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new RangeError('timestamp must be whole seconds');
  return createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
}

/** The value of the signature header. */
export function signatureHeader(secret: string, timestamp: number, body: string): string {
  return `v1=${webhookSignature(secret, timestamp, body)}`;
}

export type WebhookVerification =
  | { valid: true }
  | { valid: false; reason: 'malformed-timestamp' | 'stale-timestamp' | 'malformed-signature' | 'bad-signature' };

/**
 * What a receiver does (written here so the docs' recipe is tested): the timestamp must be within `toleranceSeconds`
 * of `nowSeconds`, and one of the header's comma-separated `v1=` values must equal the HMAC, compared in constant
 * time. `body` is the raw request body exactly as received, before any JSON parsing.
 */
export function verifyWebhook(input: {
  secret: string;
  body: string;
  timestampHeader: string | undefined;
  signatureHeader: string | undefined;
  nowSeconds: number;
  toleranceSeconds?: number;
}): WebhookVerification {
  const tolerance = input.toleranceSeconds ?? DEFAULT_TIMESTAMP_TOLERANCE_SECONDS;
  if (!input.timestampHeader || !/^\d{1,12}$/.test(input.timestampHeader)) {
    return { valid: false, reason: 'malformed-timestamp' };
  }
  const timestamp = Number(input.timestampHeader);
  if (Math.abs(input.nowSeconds - timestamp) > tolerance) return { valid: false, reason: 'stale-timestamp' };
  const candidates = (input.signatureHeader ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('v1='))
    .map((s) => s.slice(3));
  if (candidates.length === 0 || candidates.some((c) => !/^[0-9a-f]{64}$/.test(c))) {
    return { valid: false, reason: 'malformed-signature' };
  }
  const expected = Buffer.from(webhookSignature(input.secret, timestamp, input.body), 'hex');
  const match = candidates.some((c) => timingSafeEqual(Buffer.from(c, 'hex'), expected));
  return match ? { valid: true } : { valid: false, reason: 'bad-signature' };
}
