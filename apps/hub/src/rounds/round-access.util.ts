import type { PrivacyMechanism } from '@tessera/dp';
import type { PrivacySpend } from '@tessera/protocol';
import type { AuditTrail } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { privacyReportRefusal } from '../privacy/privacy-report.util';
import type { SiloIdentity } from '../silos/silo-identity';

/**
 * Checks shared by the round engine's handlers of what silos send (updates, evaluation reports, failure reports);
 * where a report may go at all is study-state/open-round.util.ts.
 */

/**
 * A privacy report must be present exactly when the task spends privacy, and state at least the plan's
 * protection (privacyReportRefusal); otherwise the update or report is refused before anything is stored.
 */
export function checkPrivacyReport(
  required: boolean,
  mechanism: PrivacyMechanism | null,
  privacy: PrivacySpend | null,
  what: string,
): void {
  if (!required || !mechanism) {
    if (privacy !== null) {
      throw new HubException(
        HubErrorCode.UPDATE_MALFORMED,
        `privacy: this ${what} spends no differential privacy under the plan; send null.`,
      );
    }
    return;
  }
  if (privacy === null) {
    throw new HubException(
      HubErrorCode.UPDATE_MALFORMED,
      `privacy: an ${what} of a differentially private study must report its privacy spend.`,
    );
  }
  const refusal = privacyReportRefusal(mechanism, privacy);
  if (refusal) throw new HubException(HubErrorCode.UPDATE_MALFORMED, `The ${what} is refused: ${refusal}.`);
}

/** The audit record of a refused report (its own record: a refusal changes no state). */
export async function recordRefusal(
  audit: AuditTrail,
  silo: SiloIdentity,
  studyId: string,
  round: number,
  err: unknown,
  action: 'round.update.refused' | 'round.evaluation.refused' = 'round.update.refused',
): Promise<void> {
  if (!(err instanceof HubException)) return;
  await audit.record({
    actor: { type: 'silo', id: silo.siloId, name: silo.name },
    action,
    subject: { studyId, siloId: silo.siloId },
    details: { round, code: err.code, reason: err.message },
  });
}
