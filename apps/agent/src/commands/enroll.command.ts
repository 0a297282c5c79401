import { createCsr, fingerprintSha256, generateKeyPair, parseCertificate } from '@tessera/pki';
import { CertificateGrant, decodeEnrollmentBundle, SILO_API, type EnrollmentBundle } from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';
import { hubJson, refusal } from '../hub/hub-client';
import type { AgentState, IdentityRecord } from '../state/agent-state';

export function parseBundle(text: string): EnrollmentBundle {
  try {
    return decodeEnrollmentBundle(text);
  } catch (err) {
    throw new AgentError(AgentErrorCode.USAGE, (err as Error).message);
  }
}

/**
 * Enrollment: fetch the hub's CA and pin it by the bundle's fingerprint (refusing before anything is sent if it
 * differs), make a key pair here, send only the CSR and the token over TLS verified against the pinned CA, and
 * store the certificate. The private key never leaves the state directory.
 */
export async function enroll(
  state: AgentState,
  bundle: EnrollmentBundle,
  options: { force?: boolean } = {},
): Promise<IdentityRecord> {
  if (state.isEnrolled() && !options.force) {
    const current = state.loadIdentity().record;
    throw new AgentError(
      AgentErrorCode.ALREADY_ENROLLED,
      `This agent is already enrolled as silo ${current.siloName} (${current.siloId}); use --force to replace its identity.`,
    );
  }
  const caRes = await hubJson(bundle.enrollUrl, 'GET', SILO_API.caCertificate, { insecureSkipVerify: true });
  const caPem = (caRes.body as { caCertificatePem?: unknown } | undefined)?.caCertificatePem;
  if (caRes.status !== 200 || typeof caPem !== 'string') throw refusal(caRes, 'to show its CA certificate');
  let actual: string;
  try {
    actual = fingerprintSha256(caPem);
  } catch {
    throw new AgentError(AgentErrorCode.HUB_NOT_TRUSTED, 'The hub sent something that is not a certificate as its CA.');
  }
  if (actual !== bundle.caFingerprintSha256) {
    throw new AgentError(
      AgentErrorCode.HUB_NOT_TRUSTED,
      `The hub's CA fingerprint is ${actual}, but the enrollment bundle pins ${bundle.caFingerprintSha256}. ` +
        'This is not the hub that issued the bundle (or the bundle was altered); nothing was sent.',
    );
  }
  const keys = generateKeyPair();
  const csrPem = createCsr({ privateKeyPem: keys.privateKeyPem, siloId: bundle.siloId });
  const res = await hubJson(
    bundle.enrollUrl,
    'POST',
    SILO_API.enroll,
    { caCertificatePem: caPem },
    { token: bundle.token, csrPem },
  );
  if (res.status !== 200) throw refusal(res, 'the enrollment');
  const grant = CertificateGrant.safeParse(res.body);
  if (!grant.success || grant.data.siloId !== bundle.siloId) {
    throw new AgentError(
      AgentErrorCode.HUB_REFUSED,
      'The hub answered the enrollment with an invalid certificate grant.',
    );
  }
  const cert = parseCertificate(grant.data.certificatePem);
  if (cert.siloId !== bundle.siloId) {
    throw new AgentError(AgentErrorCode.HUB_REFUSED, 'The certificate the hub issued names another silo.');
  }
  return state.saveIdentity(
    {
      siloId: bundle.siloId,
      siloName: bundle.siloName,
      hubSiloUrl: grant.data.hubSiloUrl,
      enrollUrl: bundle.enrollUrl,
      caFingerprintSha256: actual,
      serial: grant.data.serial,
      notAfter: grant.data.notAfter,
      enrolledAt: new Date().toISOString(),
    },
    keys.privateKeyPem,
    grant.data.certificatePem,
    caPem,
  );
}
