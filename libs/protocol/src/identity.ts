import { z } from 'zod';

/** sha256 fingerprint: 64 lowercase hex digits. */
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (sha256)');

/**
 * What an administrator hands to a hospital's IT team once: where to enroll, the one-time token, and the
 * fingerprint of the hub's CA so the agent can pin the hub before it sends anything.
 */
export const EnrollmentBundle = z
  .object({
    format: z.literal('tessera.enrollment-bundle/1'),
    siloId: z.string().uuid(),
    siloName: z.string().min(1),
    enrollUrl: z.string().url(),
    hubSiloUrl: z.string().url(),
    token: z.string().regex(/^[A-Za-z0-9_-]{43,}$/, 'must be at least 256 bits, base64url'),
    caFingerprintSha256: Sha256Hex,
    expiresAt: z.string().datetime(),
  })
  .strict();
export type EnrollmentBundle = z.infer<typeof EnrollmentBundle>;

/** The bundle travels as one line of text: base64url of its JSON. */
export function encodeEnrollmentBundle(bundle: EnrollmentBundle): string {
  return Buffer.from(JSON.stringify(bundle), 'utf8').toString('base64url');
}

/** Accepts the one-line form or the JSON itself; throws a message naming what is wrong. */
export function decodeEnrollmentBundle(text: string): EnrollmentBundle {
  const trimmed = text.trim();
  let json: unknown;
  try {
    json = JSON.parse(trimmed.startsWith('{') ? trimmed : Buffer.from(trimmed, 'base64url').toString('utf8'));
  } catch {
    throw new Error('the enrollment bundle is neither JSON nor base64url-encoded JSON');
  }
  const parsed = EnrollmentBundle.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'bundle'}: ${i.message}`);
    throw new Error(`the enrollment bundle is invalid: ${problems.join('; ')}`);
  }
  return parsed.data;
}

export const EnrollRequest = z.object({ token: z.string().min(1), csrPem: z.string().min(1) }).strict();
export type EnrollRequest = z.infer<typeof EnrollRequest>;

/** The hub's answer to an enrollment or a renewal. */
export const CertificateGrant = z.object({
  siloId: z.string().uuid(),
  certificatePem: z.string(),
  caCertificatePem: z.string(),
  serial: z.string(),
  notAfter: z.string().datetime(),
  hubSiloUrl: z.string().url(),
});
export type CertificateGrant = z.infer<typeof CertificateGrant>;

export const RenewRequest = z.object({ csrPem: z.string().min(1) }).strict();
export type RenewRequest = z.infer<typeof RenewRequest>;

/** What the hub knows of the calling silo (GET /silo/v1/me). */
export const SiloSelf = z.object({
  siloId: z.string().uuid(),
  name: z.string(),
  status: z.enum(['registered', 'enrolled', 'suspended']),
  certificate: z.object({ serial: z.string(), notAfter: z.string().datetime() }),
  hubTime: z.string().datetime(),
});
export type SiloSelf = z.infer<typeof SiloSelf>;

/** Error body every hub route answers with. */
export const HubErrorBody = z.object({
  /** A HubErrorCode (hub-errors.ts); read as any string, so a client still reads a newer hub's codes. */
  error: z.string(),
  message: z.string(),
  correlationId: z.string(),
  details: z.unknown().optional(),
});
export type HubErrorBody = z.infer<typeof HubErrorBody>;

/** Paths of the silo-facing API, shared so hub and agent cannot drift apart. */
export const SILO_API = {
  caCertificate: '/enroll/v1/ca',
  enroll: '/enroll/v1/enroll',
  me: '/silo/v1/me',
  renew: '/silo/v1/certificate/renew',
} as const;
