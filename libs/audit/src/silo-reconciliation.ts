import { type JsonObject, type JsonValue } from '@tessera/canonical';
import { isAuditRecord, isIsoUtcTimestamp, isPlainObject, isSha256Hex, type AuditRecord } from './audit-record';
import { verifyChain } from './chain-verifier';
import { type AuditBundle } from './report-bundle';
import { verifyReceipt } from './signed-receipt';

/** The `format` tag of an agent's audit export (`tessera-agent audit export`). */
export const AGENT_AUDIT_EXPORT_FORMAT = 'tessera.agent-audit-export/1';

/**
 * Actions an agent writes to its own chain (`audit.log.jsonl` in its state directory). Shared here so the agent that
 * writes them and the reconciliation that reads them cannot drift apart.
 */
export enum AgentAuditAction {
  /** First record of a new log: which silo keeps it. */
  LogStarted = 'agent.audit-log.started',
  /** A torn last line (a write cut by a crash) was cut off at start; details name its length and SHA-256. */
  TornLineDiscarded = 'agent.audit-log.torn-line-discarded',
  /** The hub's audit public key was pinned (first use) or changed; details: keyId, previousKeyId. */
  HubKeyPinned = 'hub.audit-key.pinned',
  /** A steward or the approval policy approved a plan hash, and the hub accepted the decision. */
  PlanApproved = 'study.plan.approved',
  PlanRejected = 'study.plan.rejected',
  /** The hub offered a task (recorded once per study, round, attempt and kind). */
  TaskReceived = 'task.received',
  /** A global model was downloaded; details: expected modelHash, the sha256 of the bytes, verified. */
  ModelDownloaded = 'model.downloaded',
  /** The hub accepted an update; details: updateSha256 (of the framed upload), bytes, numExamples, receipt. */
  UpdateUploaded = 'update.uploaded',
  /** The hub refused an update; details: round, message. */
  UpdateRefused = 'update.refused',
  /** An evaluation of the global model was reported (aggregate metrics only). */
  EvaluationReported = 'evaluation.reported',
  /** A failure was reported to the hub (or could not be: details.delivered). */
  FailureReported = 'failure.reported',
  /** The agent refused work: plan not approved by this silo, or its own privacy cap reached. */
  TaskRefused = 'task.refused',
  /** Differential privacy spent by an uploaded update; details: the mechanism and accountant figures. */
  BudgetSpent = 'privacy.budget.spent',
}

/** The hub's action for an accepted upload (apps/hub rounds.service), matched against the agent's uploads. */
export const HUB_UPDATE_ACCEPTED_ACTION = 'round.update.accepted';

/**
 * What `tessera-agent audit export` writes for an auditor: the agent's whole chain, the hub's receipts as the agent
 * stored them, the silo's id, and the hub key the agent pinned (if any).
 */
export interface AgentAuditExport {
  format: typeof AGENT_AUDIT_EXPORT_FORMAT;
  exportedAt: string;
  siloId: string;
  siloName?: string;
  /** The hub audit key the agent pinned, if it could fetch one; reconciliation trusts the bundle's key instead. */
  hubKey: { publicKeyPem: string; keyId: string } | null;
  records: AuditRecord[];
  /** Receipt files as stored (`receipts/<study>/<round>-<attempt>.json`): the hub's word plus its signature. */
  receipts: JsonObject[];
}

/** Why an agent's log and a hub's report do not tell the same story. */
export enum SiloDiscrepancyCode {
  /** The export is not an agent audit export (shape, format). */
  ExportMalformed = 'AGENT_EXPORT_MALFORMED',
  /** The agent's own chain does not verify: its records cannot be relied on from the break on. */
  AgentChainBroken = 'AGENT_CHAIN_BROKEN',
  /** A receipt's signature does not verify under the bundle's hub key. */
  ReceiptSignatureInvalid = 'RECEIPT_SIGNATURE_INVALID',
  /** A receipt verifies but names another update or silo than the agent's record it is attached to. */
  ReceiptMismatch = 'RECEIPT_MISMATCH',
  /** The agent holds a valid receipt for an upload that the hub's chain does not record as accepted. */
  UploadMissingAtHub = 'UPLOAD_MISSING_AT_HUB',
  /** The hub's chain records an accepted upload from this silo that the agent never recorded. */
  AcceptanceUnknownToAgent = 'ACCEPTANCE_UNKNOWN_TO_AGENT',
  /** A stored receipt file has no upload record in the agent's log. */
  ReceiptNotInAgentLog = 'RECEIPT_NOT_IN_AGENT_LOG',
}

export interface SiloDiscrepancy {
  code: SiloDiscrepancyCode;
  message: string;
  studyId?: string;
  updateSha256?: string;
  /** Seq of the agent record concerned. */
  agentSeq?: number;
  /** Seq of the hub record concerned. */
  hubSeq?: number;
}

export interface SiloReconciliation {
  /** True when there is no discrepancy. */
  ok: boolean;
  /** Every discrepancy, agent-chain problems first, then in agent-log order, then in hub-chain order. */
  discrepancies: SiloDiscrepancy[];
  /** The studies compared. */
  studyIds: string[];
  /** Uploads found on both sides (same study, silo and updateSha256) with a valid receipt. */
  matched: number;
  /** Agent uploads left out because the hub accepted them after it generated the bundle (a later report holds them). */
  afterBundle: number;
}

export interface ReconcileOptions {
  /**
   * The studies to compare. Default: the bundle summary's `id` (or `studyId`) when it is a string, else every study
   * created inside the bundle's segment (a study begun before the segment would be only partly covered).
   */
  studyIds?: readonly string[];
}

/** Returns why `value` is not an AgentAuditExport, or null. Records are checked for shape only, not chained. */
export function describeAgentExportProblem(value: unknown): string | null {
  if (!isPlainObject(value)) return 'the agent export is not a JSON object';
  if (value.format !== AGENT_AUDIT_EXPORT_FORMAT) {
    return `format is ${JSON.stringify(value.format) ?? 'missing'}; expected "${AGENT_AUDIT_EXPORT_FORMAT}"`;
  }
  if (typeof value.siloId !== 'string' || value.siloId.length === 0) return 'siloId must be a non-empty string';
  if (!isIsoUtcTimestamp(value.exportedAt)) return 'exportedAt must be an ISO-8601 UTC timestamp';
  if (!Array.isArray(value.records)) return 'records must be an array';
  const bad = value.records.findIndex((r) => !isAuditRecord(r));
  if (bad >= 0) return `records[${bad}] is not a well-formed audit record`;
  if (!Array.isArray(value.receipts) || !value.receipts.every(isPlainObject)) {
    return 'receipts must be an array of objects';
  }
  if (value.hubKey !== null && !isPlainObject(value.hubKey)) return 'hubKey must be an object or null';
  return null;
}

interface AgentUpload {
  record: AuditRecord;
  studyId: string | undefined;
  updateSha256: string;
  receipt: unknown;
}

/** A JSON value as a message shows it: strings as they are, anything else as JSON (not "[object Object]"). */
function shown(value: JsonValue | undefined): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? 'undefined');
}

/** AuditRecord.action is any string (agent and hub actions share the record); compared as one. */
const UPDATE_UPLOADED_ACTION: string = AgentAuditAction.UpdateUploaded;

function uploadsOf(records: readonly AuditRecord[]): AgentUpload[] {
  const out: AgentUpload[] = [];
  for (const record of records) {
    if (record.action !== UPDATE_UPLOADED_ACTION) continue;
    const sha = record.details.updateSha256;
    if (!isSha256Hex(sha)) continue;
    out.push({ record, studyId: record.subject.studyId, updateSha256: sha, receipt: record.details.receipt });
  }
  return out;
}

function defaultStudies(bundle: AuditBundle): string[] {
  const summaryId = bundle.study.id ?? bundle.study.studyId;
  if (typeof summaryId === 'string') return [summaryId];
  const created = bundle.records.filter((r) => r.action === 'study.created' && r.subject.studyId !== undefined);
  return [...new Set(created.map((r) => r.subject.studyId!))];
}

/** The signed part of a stored receipt file: the file itself when it is a SignedReceipt, else its `signature`. */
function signedPart(stored: unknown): unknown {
  if (isPlainObject(stored) && 'payload' in stored && 'keyId' in stored) return stored;
  return isPlainObject(stored) ? stored.signature : undefined;
}

/**
 * Compares a silo's own audit log with the hub's signed report bundle, both ways, for the studies in scope:
 * every upload the agent recorded with a valid receipt must appear in the hub's chain as `round.update.accepted`
 * for the same silo and update hash, every such acceptance must appear in the agent's log, and every receipt must
 * verify under the bundle's hub key (Ed25519, RFC 8032). The bundle itself should be verified first
 * (verifyBundle): this function trusts its records and key as given. Pure; no I/O.
 */
export function reconcileSiloLog(
  agentExport: unknown,
  hubBundle: AuditBundle,
  options: ReconcileOptions = {},
): SiloReconciliation {
  const discrepancies: SiloDiscrepancy[] = [];
  const studyIds = [...(options.studyIds ?? defaultStudies(hubBundle))];
  const malformed = describeAgentExportProblem(agentExport);
  if (malformed !== null) {
    return {
      ok: false,
      discrepancies: [{ code: SiloDiscrepancyCode.ExportMalformed, message: malformed }],
      studyIds,
      matched: 0,
      afterBundle: 0,
    };
  }
  const exported = agentExport as AgentAuditExport;
  const inScope = (studyId: string | undefined) => studyId !== undefined && studyIds.includes(studyId);

  const chain = verifyChain(exported.records);
  if (!chain.ok) {
    discrepancies.push({
      code: SiloDiscrepancyCode.AgentChainBroken,
      message: `the agent's log breaks at seq ${chain.brokenAt} (${chain.reason}): ${chain.message}`,
      agentSeq: chain.brokenAt,
    });
  }

  const hubKey = hubBundle.hub.publicKeyPem;
  // The agent gets its receipt only after the hub appended the acceptance, so an acceptance stamped after the
  // bundle was generated belongs to a later report (the race inside one request is milliseconds wide).
  const bundleTime = hubBundle.generatedAt;
  const accepted = new Map<string, { record: AuditRecord; updateSha256: string }>();
  for (const r of hubBundle.records) {
    const sha = r.details.updateSha256;
    if (r.action !== HUB_UPDATE_ACCEPTED_ACTION || r.subject.siloId !== exported.siloId || !isSha256Hex(sha)) continue;
    if (inScope(r.subject.studyId)) accepted.set(`${r.subject.studyId}:${sha}`, { record: r, updateSha256: sha });
  }

  const uploads = uploadsOf(exported.records).filter((u) => inScope(u.studyId));
  const recorded = new Set<string>();
  let matched = 0;
  let afterBundle = 0;
  for (const u of uploads) {
    const key = `${u.studyId}:${u.updateSha256}`;
    recorded.add(key);
    const where = { studyId: u.studyId, updateSha256: u.updateSha256, agentSeq: u.record.seq };
    const signed = signedPart(u.receipt);
    if (signed === undefined || signed === null) continue; // no receipt: nothing the hub signed to hold it to
    const check = verifyReceipt(signed, hubKey);
    if (!check.ok) {
      discrepancies.push({
        code: SiloDiscrepancyCode.ReceiptSignatureInvalid,
        message: `the receipt for update ${u.updateSha256} (agent seq ${u.record.seq}) does not verify under the hub key ${hubBundle.hub.keyId}: ${check.message}`,
        ...where,
      });
      continue;
    }
    const payload = (signed as { payload: JsonObject }).payload;
    if (payload.updateSha256 !== u.updateSha256 || payload.siloId !== exported.siloId) {
      discrepancies.push({
        code: SiloDiscrepancyCode.ReceiptMismatch,
        message: `the receipt at agent seq ${u.record.seq} names update ${shown(payload.updateSha256)} of silo ${shown(payload.siloId)}, not ${u.updateSha256} of ${exported.siloId}`,
        ...where,
      });
      continue;
    }
    const hub = accepted.get(key);
    if (hub !== undefined) {
      matched += 1;
      continue;
    }
    const receivedAt = payload.receivedAt ?? payload.acceptedAt;
    if (typeof receivedAt === 'string' && Date.parse(receivedAt) > Date.parse(bundleTime)) {
      afterBundle += 1; // accepted after the bundle's head: a later report will hold it
      continue;
    }
    discrepancies.push({
      code: SiloDiscrepancyCode.UploadMissingAtHub,
      message: `the agent holds a valid receipt for update ${u.updateSha256} of study ${u.studyId} (agent seq ${u.record.seq}), but the hub's chain records no such acceptance`,
      ...where,
    });
  }

  for (const stored of exported.receipts) {
    const signed = signedPart(stored);
    const payload = isPlainObject(signed) && isPlainObject(signed.payload) ? signed.payload : stored;
    const sha = payload.updateSha256;
    const studyId = typeof payload.studyId === 'string' ? payload.studyId : undefined;
    if (!isSha256Hex(sha) || !inScope(studyId) || recorded.has(`${studyId}:${sha}`)) continue;
    discrepancies.push({
      code: SiloDiscrepancyCode.ReceiptNotInAgentLog,
      message: `a stored receipt for update ${sha} of study ${studyId} has no upload record in the agent's log`,
      updateSha256: sha,
      ...(studyId === undefined ? {} : { studyId }),
    });
  }

  for (const [key, { record: r, updateSha256 }] of accepted) {
    if (recorded.has(key)) continue;
    discrepancies.push({
      code: SiloDiscrepancyCode.AcceptanceUnknownToAgent,
      message: `the hub's chain records update ${updateSha256} of study ${r.subject.studyId} as accepted from this silo (hub seq ${r.seq}), but the agent never recorded it`,
      updateSha256,
      hubSeq: r.seq,
      ...(r.subject.studyId === undefined ? {} : { studyId: r.subject.studyId }),
    });
  }

  return { ok: discrepancies.length === 0, discrepancies, studyIds, matched, afterBundle };
}
