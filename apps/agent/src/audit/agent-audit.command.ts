import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_AUDIT_EXPORT_FORMAT, type AgentAuditExport, type JsonObject } from '@tessera/audit';
import { AgentError, AgentErrorCode } from '../agent.error';
import type { SiloSession } from '../hub/silo-session';
import type { StudyTransport } from '../hub/study-transport';
import type { AgentState } from '../state/agent-state';
import { ReceiptStore } from '../state/receipt-store';
import { AgentAuditLog, type AuditLogCheck } from './agent-audit-log';
import { AuditedStudyTransport, type AuditedTransportOptions } from './audited-study-transport';
import { HubAuditKeyStore } from './hub-audit-key';

/** Opens this agent's audit log (verifying it: a broken chain throws STATE_CORRUPT and the agent stops). */
export function openAgentAuditLog(state: AgentState): AgentAuditLog {
  const { record } = state.loadIdentity();
  return AgentAuditLog.open(state.root, { type: 'silo', id: record.siloId, name: record.siloName });
}

/**
 * The one call sites make to audit a transport: the daemon (`decidedBy: 'policy'`) and the steward's studies
 * commands (`'steward'`). Receipts are verified against the hub key pinned in the state directory, if any.
 */
export function auditedStudyTransport(
  state: AgentState,
  inner: StudyTransport,
  decidedBy: AuditedTransportOptions['decidedBy'],
  warn?: (message: string) => void,
): AuditedStudyTransport {
  const keys = new HubAuditKeyStore(state.root);
  return new AuditedStudyTransport(inner, openAgentAuditLog(state), {
    decidedBy,
    hubKey: () => keys.pinned(),
    ...(warn === undefined ? {} : { warn }),
  });
}

/**
 * Pins the hub's audit key on first use (GET /silo/v1/audit/public-key). A hub that cannot say is not fatal: the
 * receipts are then stored unverified, and the auditor's reconciliation verifies them under the report's key.
 */
export async function pinHubAuditKey(
  state: AgentState,
  session: SiloSession,
  log: AgentAuditLog,
  info: (message: string) => void,
): Promise<void> {
  try {
    const key = await new HubAuditKeyStore(state.root).refresh(session, log);
    info(
      key === null
        ? "the hub does not serve its audit key: receipts are kept unverified (the auditor's reconciliation verifies them)"
        : `audit log ${log.file}; hub audit key sha256:${key.keyId.slice(0, 16)}… pinned`,
    );
  } catch (err) {
    if (!(err instanceof AgentError) || err.code === AgentErrorCode.STATE_CORRUPT) throw err;
    info(`the hub's audit key could not be fetched (${err.message}); receipts are kept unverified until it is`);
  }
}

/** Every receipt file under receipts/, in a stable order. */
function storedReceipts(state: AgentState): JsonObject[] {
  const root = new ReceiptStore(state.root).root;
  if (!existsSync(root)) return [];
  const out: JsonObject[] = [];
  for (const study of readdirSync(root).sort()) {
    for (const file of readdirSync(join(root, study)).sort()) {
      if (!file.endsWith('.json')) continue;
      const path = join(root, study, file);
      try {
        out.push(JSON.parse(readFileSync(path, 'utf8')) as JsonObject);
      } catch (err) {
        throw new AgentError(AgentErrorCode.STATE_CORRUPT, `${path} is unreadable: ${(err as Error).message}`);
      }
    }
  }
  return out;
}

/**
 * `tessera-agent audit export`: the agent's records, the hub's receipts and the silo id, for an auditor to compare
 * with the hub's report (`tessera-verify report.json --reconcile agent-export.json`). The log is verified first.
 */
export function exportAgentAudit(state: AgentState, now: Date = new Date()): AgentAuditExport {
  const { record } = state.loadIdentity();
  const log = openAgentAuditLog(state);
  const hubKey = new HubAuditKeyStore(state.root).pinned();
  return {
    format: AGENT_AUDIT_EXPORT_FORMAT,
    exportedAt: now.toISOString(),
    siloId: record.siloId,
    siloName: record.siloName,
    hubKey: hubKey === null ? null : { publicKeyPem: hubKey.publicKeyPem, keyId: hubKey.keyId },
    records: log.records(),
    receipts: storedReceipts(state),
  };
}

/** `tessera-agent audit verify`: checks the local chain without changing the file. */
export function verifyAgentAudit(state: AgentState): AuditLogCheck {
  const { record } = state.loadIdentity();
  return AgentAuditLog.inspect(state.root, { type: 'silo', id: record.siloId, name: record.siloName });
}

export function formatAuditCheck(check: AuditLogCheck): string {
  const lines = [
    check.ok
      ? `OK: ${check.file}: ${check.records} record(s), chain intact`
      : `FAILED: ${check.file} is broken at ${check.problem?.line !== undefined ? `line ${check.problem.line}` : `seq ${check.problem?.seq}`} (${check.problem?.code}): ${check.problem?.message}`,
    `  head:  seq ${check.headSeq}${check.headHash === null ? '' : ` ${check.headHash}`}`,
  ];
  if (check.tornLastLine) {
    lines.push(
      '  note:  the last line is incomplete (a write cut by a crash); the agent cuts it off at its next start',
    );
  }
  return lines.join('\n');
}
