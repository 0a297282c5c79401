import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentAuditAction, publicKeyFingerprint } from '@tessera/audit';
import { z } from 'zod';
import { AgentError, AgentErrorCode } from '../agent.error';
import { jsonOf } from '../hub/hub-client';
import type { SiloSession } from '../hub/silo-session';
import { writeFileAtomic } from '../state/atomic-file.util';
import type { AgentAuditLog } from './agent-audit-log';

/**
 * The hub route that serves its audit public key to agents (apps/hub reports/silo-audit.controller.ts). Hard-coded
 * here on purpose rather than added to libs/protocol's SILO_STUDY_API: it is an audit concern, not the study protocol.
 */
export const HUB_AUDIT_KEY_PATH = '/silo/v1/audit/public-key';

export const PinnedHubKey = z
  .object({ publicKeyPem: z.string().min(1), keyId: z.string().regex(/^[0-9a-f]{64}$/), pinnedAt: z.string() })
  .strict();
export type PinnedHubKey = z.infer<typeof PinnedHubKey>;

const HubKeyAnswer = z.object({ publicKeyPem: z.string().min(1), keyId: z.string() });

/**
 * `hub-audit-key.json` in the state directory: the hub's Ed25519 audit key, pinned on first use (fetched over the
 * mutual-TLS channel, whose hub certificate is itself pinned by CA fingerprint). Receipts are verified against the
 * pinned key. A different key later is recorded and NOT adopted (format version 1 has no key rotation): receipts
 * signed by it then record as unverified-by-pinned-key, and an auditor's reconciliation settles the matter.
 */
export class HubAuditKeyStore {
  readonly file: string;

  constructor(stateRoot: string) {
    this.file = join(stateRoot, 'hub-audit-key.json');
  }

  pinned(): PinnedHubKey | null {
    if (!existsSync(this.file)) return null;
    try {
      return PinnedHubKey.parse(JSON.parse(readFileSync(this.file, 'utf8')));
    } catch (err) {
      throw new AgentError(AgentErrorCode.STATE_CORRUPT, `${this.file} is unreadable: ${(err as Error).message}`);
    }
  }

  /**
   * Fetches the hub's key and pins it if none is pinned. Returns the pinned key, or null when the hub does not serve
   * it (an older hub: receipts are then stored unverified and verified by the auditor's reconciliation instead).
   */
  async refresh(session: SiloSession, log: AgentAuditLog, now: Date = new Date()): Promise<PinnedHubKey | null> {
    const current = this.pinned();
    const res = await session.request('GET', HUB_AUDIT_KEY_PATH);
    if (res.status === 404) return current;
    const answer = HubKeyAnswer.safeParse(jsonOf(res));
    if (res.status !== 200 || !answer.success) {
      throw new AgentError(
        AgentErrorCode.HUB_REFUSED,
        `The hub's audit key could not be read (HTTP ${res.status}).`,
        res.status,
      );
    }
    const keyId = publicKeyFingerprint(answer.data.publicKeyPem);
    if (keyId !== answer.data.keyId) {
      throw new AgentError(
        AgentErrorCode.HUB_REFUSED,
        `The hub's audit key does not match its key id (${answer.data.keyId.slice(0, 12)}…); not pinned.`,
      );
    }
    if (current !== null && current.keyId === keyId) return current;
    if (current !== null) {
      log.append(AgentAuditAction.HubKeyPinned, {}, { keyId: current.keyId, offeredKeyId: keyId, adopted: false });
      return current;
    }
    const pinned: PinnedHubKey = { publicKeyPem: answer.data.publicKeyPem, keyId, pinnedAt: now.toISOString() };
    writeFileAtomic(this.file, JSON.stringify(pinned, null, 2) + '\n', 0o600);
    log.append(AgentAuditAction.HubKeyPinned, {}, { keyId, adopted: true });
    return pinned;
  }
}
