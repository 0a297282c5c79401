import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { AgentError, AgentErrorCode } from '../agent.error';
import { writeFileAtomic } from './atomic-file.util';

/** What the agent knows about its own identity; the key and certificate files sit beside it. */
export const IdentityRecord = z.object({
  siloId: z.string().uuid(),
  siloName: z.string(),
  hubSiloUrl: z.string().url(),
  enrollUrl: z.string().url(),
  caFingerprintSha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Names of the current key and certificate files inside identity/ (switched atomically on renewal). */
  keyFile: z.string(),
  certificateFile: z.string(),
  serial: z.string(),
  notAfter: z.string().datetime(),
  enrolledAt: z.string().datetime(),
  renewedAt: z.string().datetime().optional(),
});
export type IdentityRecord = z.infer<typeof IdentityRecord>;

export interface LoadedIdentity {
  record: IdentityRecord;
  privateKeyPem: string;
  certificatePem: string;
  caCertificatePem: string;
}

/**
 * The agent's state directory (a Docker volume in production):
 *   identity/identity.json   who we are and which key/certificate files are current
 *   identity/<serial>.key     private key, mode 0600, never leaves this directory
 *   identity/<serial>.crt     certificate issued by the hub
 *   identity/ca.crt           the hub's CA, pinned by fingerprint at enrollment
 *   approvals.json            this silo's own decisions per study and plan hash (ApprovalStore)
 *   receipts/<study>/<round>-<attempt>.json   the hub's receipts for uploaded updates (ReceiptStore)
 */
export class AgentState {
  readonly identityDir: string;

  constructor(readonly root: string) {
    this.identityDir = join(root, 'identity');
  }

  isEnrolled(): boolean {
    return existsSync(join(this.identityDir, 'identity.json'));
  }

  loadIdentity(): LoadedIdentity {
    const file = join(this.identityDir, 'identity.json');
    if (!existsSync(file)) {
      throw new AgentError(
        AgentErrorCode.NOT_ENROLLED,
        `This agent is not enrolled (no ${file}). Run: tessera-agent enroll --bundle <bundle>`,
      );
    }
    let record: IdentityRecord;
    try {
      record = IdentityRecord.parse(JSON.parse(readFileSync(file, 'utf8')));
    } catch (err) {
      throw new AgentError(AgentErrorCode.STATE_CORRUPT, `${file} is unreadable: ${(err as Error).message}`);
    }
    const read = (name: string) => {
      const path = join(this.identityDir, name);
      if (!existsSync(path)) throw new AgentError(AgentErrorCode.STATE_CORRUPT, `${path} is missing`);
      return readFileSync(path, 'utf8');
    };
    return {
      record,
      privateKeyPem: read(record.keyFile),
      certificatePem: read(record.certificateFile),
      caCertificatePem: read('ca.crt'),
    };
  }

  /**
   * Stores a new identity: key and certificate under fresh names first, then identity.json replaced atomically
   * (write + rename), so a crash at any point leaves either the old identity or the new one, never half of each.
   */
  saveIdentity(
    record: Omit<IdentityRecord, 'keyFile' | 'certificateFile'>,
    privateKeyPem: string,
    certificatePem: string,
    caCertificatePem: string,
  ): IdentityRecord {
    mkdirSync(this.identityDir, { recursive: true, mode: 0o700 });
    chmodSync(this.identityDir, 0o700);
    const previous = this.isEnrolled() ? this.loadIdentity().record : undefined;
    const keyFile = `${record.serial}.key`;
    const certificateFile = `${record.serial}.crt`;
    writePrivate(join(this.identityDir, keyFile), privateKeyPem);
    writeAtomic(join(this.identityDir, certificateFile), certificatePem, 0o644);
    writeAtomic(join(this.identityDir, 'ca.crt'), caCertificatePem, 0o644);
    const full: IdentityRecord = { ...record, keyFile, certificateFile };
    writeAtomic(join(this.identityDir, 'identity.json'), JSON.stringify(full, null, 2) + '\n', 0o600);
    if (previous && previous.keyFile !== keyFile) {
      rmSync(join(this.identityDir, previous.keyFile), { force: true });
      rmSync(join(this.identityDir, previous.certificateFile), { force: true });
    }
    return full;
  }
}

function writePrivate(path: string, content: string): void {
  writeAtomic(path, content, 0o600);
}

function writeAtomic(path: string, content: string, mode: number): void {
  writeFileAtomic(path, content, mode);
}
