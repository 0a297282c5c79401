import { existsSync, readFileSync } from 'node:fs';
import { createCsr, fingerprintSha256, generateKeyPair, parseCertificate } from '@tessera/pki';
import { CertificateGrant, decodeEnrollmentBundle, SILO_API, type EnrollmentBundle } from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';
import { hubJson, refusal } from '../hub/hub-client';
import type { AgentState, IdentityRecord } from '../state/agent-state';
import type { RegisterAgentCommand } from './agent-command';

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

/** The bundle from `--bundle`: a file (optionally written `@file`) when one exists at that path, else the text. */
function readBundleArg(value: string | undefined): string {
  if (!value) {
    throw new AgentError(
      AgentErrorCode.USAGE,
      'give the enrollment bundle with --bundle <file or text> or TESSERA_ENROLLMENT_BUNDLE',
    );
  }
  const path = value.startsWith('@') ? value.slice(1) : value;
  return existsSync(path) ? readFileSync(path, 'utf8') : value;
}

/** `tessera-agent enroll`. */
export const registerEnrollCommand: RegisterAgentCommand = (program, { io, stateOf }) => {
  program
    .command('enroll')
    .description('enroll with the hub using a one-time bundle: makes a key pair here and obtains a certificate')
    .option('--bundle <file-or-text>', 'the enrollment bundle, as a file or its text (env TESSERA_ENROLLMENT_BUNDLE)')
    .option('--force', 'replace an existing identity')
    .action(async (opts: { bundle?: string; force?: boolean }) => {
      const bundle = parseBundle(readBundleArg(opts.bundle ?? io.env.TESSERA_ENROLLMENT_BUNDLE));
      const record = await enroll(stateOf(), bundle, { force: opts.force ?? false });
      io.out(
        `enrolled as silo ${record.siloName} (${record.siloId}); certificate ${record.serial} valid until ${record.notAfter}\n`,
      );
    });
};
