import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { appendRecord, type AuditRecord, type AuditRecordInput } from './audit-record';
import { type JsonObject } from '@tessera/canonical';
import { buildBundle, type AuditBundle } from './report-bundle';
import { signReceipt } from './signed-receipt';
import {
  AGENT_AUDIT_EXPORT_FORMAT,
  AgentAuditAction,
  HUB_UPDATE_ACCEPTED_ACTION,
  reconcileSiloLog,
  SiloDiscrepancyCode,
  type AgentAuditExport,
} from './silo-reconciliation';
import { runVerifyCli, type VerifyCliIo } from './verify-command';
import { clone, ed25519KeyFromSeed, RFC8032_TEST1, RFC8032_TEST2 } from './audit-fixtures.test-util';

const HUB = ed25519KeyFromSeed(RFC8032_TEST1.secret);
const IMPOSTOR = ed25519KeyFromSeed(RFC8032_TEST2.secret);
const SILO = '11111111-1111-4111-8111-111111111111';
const OTHER_SILO = '22222222-2222-4222-8222-222222222222';
const STUDY = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const OTHER_STUDY = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';

function sha(i: number): string {
  return (i + 1).toString(16).padStart(2, '0').repeat(32);
}

function at(minute: number): string {
  return `2025-04-01T10:${String(minute).padStart(2, '0')}:00.000Z`;
}

function chain(inputs: AuditRecordInput[]): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (const input of inputs) out.push(appendRecord(out.at(-1) ?? null, input));
  return out;
}

/** What the hub returns for an upload: its receipt fields plus the SignedReceipt over them (rounds.service). */
function hubReceipt(round: number, updateSha256: string, key = HUB, siloId = SILO, studyId = STUDY): JsonObject {
  const payload = { studyId, siloId, round, attempt: 1, updateSha256, receivedAt: at(round) };
  return { ...payload, signature: { ...signReceipt(payload, key) } };
}

function acceptance(round: number, updateSha256: string, siloId = SILO, studyId = STUDY): AuditRecordInput {
  return {
    time: at(round),
    actor: { type: 'silo', id: siloId },
    action: HUB_UPDATE_ACCEPTED_ACTION,
    subject: { studyId, siloId },
    details: { round, attempt: 1, updateSha256, bytes: 120, numExamples: 50 },
  };
}

function upload(round: number, updateSha256: string, receipt: JsonObject | null, studyId = STUDY): AuditRecordInput {
  return {
    time: at(round),
    actor: { type: 'silo', id: SILO },
    action: AgentAuditAction.UpdateUploaded,
    subject: { studyId },
    details: { round, attempt: 1, updateSha256, bytes: 120, numExamples: 50, receipt },
  };
}

interface Scenario {
  hub: AuditRecordInput[];
  agent: AuditRecordInput[];
  receipts?: JsonObject[];
}

/** The consistent story: two rounds, both uploads accepted, another silo's upload in the same chain. */
function consistent(): Scenario {
  const r1 = hubReceipt(1, sha(1));
  const r2 = hubReceipt(2, sha(2));
  return {
    hub: [
      { time: at(0), actor: { type: 'user', id: 'u-1' }, action: 'study.created', subject: { studyId: STUDY } },
      acceptance(1, sha(1)),
      acceptance(1, sha(9), OTHER_SILO),
      acceptance(2, sha(2)),
    ],
    agent: [
      { time: at(0), actor: { type: 'silo', id: SILO }, action: AgentAuditAction.LogStarted, details: {} },
      upload(1, sha(1), r1),
      upload(2, sha(2), r2),
    ],
    receipts: [r1, r2],
  };
}

function materialize(s: Scenario): { exported: AgentAuditExport; bundle: AuditBundle } {
  const bundle = buildBundle({
    records: chain(s.hub),
    study: { id: STUDY, name: 'Sepsis' },
    signingKey: HUB,
    generatedAt: at(59),
  });
  const exported: AgentAuditExport = {
    format: AGENT_AUDIT_EXPORT_FORMAT,
    exportedAt: at(59),
    siloId: SILO,
    hubKey: null,
    records: chain(s.agent),
    receipts: s.receipts ?? [],
  };
  return { exported, bundle };
}

function codes(s: Scenario): string[] {
  const { exported, bundle } = materialize(s);
  return reconcileSiloLog(exported, bundle).discrepancies.map((d) => d.code);
}

describe('reconcileSiloLog', () => {
  it('finds nothing wrong when both sides tell the same story', () => {
    const { exported, bundle } = materialize(consistent());
    expect(reconcileSiloLog(exported, bundle)).toEqual({
      ok: true,
      discrepancies: [],
      studyIds: [STUDY],
      matched: 2,
      afterBundle: 0,
    });
  });

  it('names an upload with a valid receipt that the hub chain does not record', () => {
    const s = consistent();
    s.hub = s.hub.filter((r) => r.details?.updateSha256 !== sha(2));
    const { exported, bundle } = materialize(s);
    const result = reconcileSiloLog(exported, bundle);
    expect(result.ok).toBe(false);
    expect(result.discrepancies).toEqual([
      expect.objectContaining({ code: SiloDiscrepancyCode.UploadMissingAtHub, updateSha256: sha(2), agentSeq: 3 }),
    ]);
  });

  it('names a hub acceptance the agent never recorded', () => {
    const s = consistent();
    s.agent = s.agent.filter((r) => r.details?.updateSha256 !== sha(1));
    s.receipts = s.receipts!.slice(1);
    const result = reconcileSiloLog(materialize(s).exported, materialize(s).bundle);
    expect(result.discrepancies).toEqual([
      expect.objectContaining({ code: SiloDiscrepancyCode.AcceptanceUnknownToAgent, updateSha256: sha(1), hubSeq: 2 }),
    ]);
  });

  it('refuses a receipt signed by another key, and one whose payload was edited', () => {
    const forged = consistent();
    forged.agent[1] = upload(1, sha(1), hubReceipt(1, sha(1), IMPOSTOR));
    expect(codes(forged)).toEqual([SiloDiscrepancyCode.ReceiptSignatureInvalid]);

    const edited = consistent();
    const receipt = clone(hubReceipt(1, sha(1)));
    (receipt.signature as { payload: JsonObject }).payload.round = 7;
    edited.agent[1] = upload(1, sha(1), receipt);
    expect(codes(edited)).toEqual([SiloDiscrepancyCode.ReceiptSignatureInvalid]);
  });

  it('refuses a genuine receipt attached to another update', () => {
    const s = consistent();
    s.agent[2] = upload(2, sha(2), hubReceipt(1, sha(1)));
    expect(codes(s)).toEqual([SiloDiscrepancyCode.ReceiptMismatch]);
  });

  it('reports a broken agent chain and still compares what it says', () => {
    const { exported, bundle } = materialize(consistent());
    exported.records[1]!.details.bytes = 121;
    const result = reconcileSiloLog(exported, bundle);
    expect(result.discrepancies.map((d) => d.code)).toEqual([SiloDiscrepancyCode.AgentChainBroken]);
    expect(result.discrepancies[0]!.agentSeq).toBe(2);
    expect(result.matched).toBe(2);
  });

  it('names a stored receipt that has no upload record in the log', () => {
    const s = consistent();
    s.receipts = [...s.receipts!, hubReceipt(3, sha(3))];
    expect(codes(s)).toEqual([SiloDiscrepancyCode.ReceiptNotInAgentLog]);
  });

  it('leaves out other studies, uploads without receipts, and uploads accepted after the bundle', () => {
    const s = consistent();
    s.agent.push(upload(3, sha(4), hubReceipt(3, sha(4), HUB, SILO, OTHER_STUDY), OTHER_STUDY));
    s.agent.push(upload(4, sha(5), null));
    const late = hubReceipt(4, sha(6));
    (late.signature as { payload: JsonObject }).payload.receivedAt = '2025-04-01T11:30:00.000Z';
    s.agent.push(
      upload(4, sha(6), { signature: { ...signReceipt((late.signature as { payload: JsonObject }).payload, HUB) } }),
    );
    const { exported, bundle } = materialize(s);
    const result = reconcileSiloLog(exported, bundle);
    expect(result).toMatchObject({ ok: true, matched: 2, afterBundle: 1, studyIds: [STUDY] });
    // Asked about the other study explicitly, its upload is missing from this bundle.
    const other = reconcileSiloLog(exported, bundle, { studyIds: [OTHER_STUDY] });
    expect(other.discrepancies.map((d) => d.code)).toEqual([SiloDiscrepancyCode.UploadMissingAtHub]);
  });

  it('refuses what is not an agent export', () => {
    const { bundle } = materialize(consistent());
    const result = reconcileSiloLog({ format: 'something-else' }, bundle);
    expect(result.ok).toBe(false);
    expect(result.discrepancies[0]!.code).toBe(SiloDiscrepancyCode.ExportMalformed);
  });

  it('finds exactly one discrepancy per acceptance removed from the hub and per upload removed from the agent', () => {
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
        fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
        (keepHub, keepAgent) => {
          const hub: AuditRecordInput[] = [
            { time: at(0), actor: { type: 'user', id: 'u-1' }, action: 'study.created', subject: { studyId: STUDY } },
          ];
          const agent: AuditRecordInput[] = [];
          for (let i = 0; i < 4; i++) {
            if (keepHub[i]) hub.push(acceptance(i + 1, sha(i)));
            if (keepAgent[i]) agent.push(upload(i + 1, sha(i), hubReceipt(i + 1, sha(i))));
          }
          const { exported, bundle } = materialize({ hub, agent });
          const result = reconcileSiloLog(exported, bundle);
          const both = keepHub.filter((k, i) => k && keepAgent[i]).length;
          const onlyHub = keepHub.filter((k, i) => k && !keepAgent[i]).length;
          const onlyAgent = keepAgent.filter((k, i) => k && !keepHub[i]).length;
          expect(result.matched).toBe(both);
          expect(
            result.discrepancies.filter((d) => d.code === SiloDiscrepancyCode.AcceptanceUnknownToAgent),
          ).toHaveLength(onlyHub);
          expect(result.discrepancies.filter((d) => d.code === SiloDiscrepancyCode.UploadMissingAtHub)).toHaveLength(
            onlyAgent,
          );
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('tessera-verify --reconcile', () => {
  function io(s: Scenario, agentText?: string): VerifyCliIo {
    const { exported, bundle } = materialize(s);
    const entries: Record<string, string> = {
      'report.json': JSON.stringify(bundle),
      'agent.json': agentText ?? JSON.stringify(exported),
    };
    return {
      readFile(path) {
        if (!(path in entries)) throw new Error(`ENOENT: ${path}`);
        return entries[path]!;
      },
    };
  }

  it('exits 0 when the agent export is consistent with the report', () => {
    const out = runVerifyCli(['report.json', '--reconcile', 'agent.json'], io(consistent()));
    expect(out.exitCode).toBe(0);
    expect(out.stdout).toContain('OK: report.json is intact');
    expect(out.stdout).toContain('OK: agent.json is consistent with the report (2 upload(s) matched)');
  });

  it('exits 1 naming the first discrepancy', () => {
    const s = consistent();
    s.hub = s.hub.filter((r) => r.details?.updateSha256 !== sha(1));
    const out = runVerifyCli(['report.json', '--reconcile', 'agent.json'], io(s));
    expect(out.exitCode).toBe(1);
    expect(out.stdout).toContain(`FAILED: agent.json does not reconcile with the report: UPLOAD_MISSING_AT_HUB`);
    expect(out.stdout).toContain(sha(1));
    const json = runVerifyCli(['report.json', '--reconcile', 'agent.json', '--json'], io(s));
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, reconciliation: { ok: false, file: 'agent.json' } });
    expect(json.exitCode).toBe(1);
  });

  it('exits 2 when the agent export is unreadable or not an export', () => {
    expect(runVerifyCli(['report.json', '--reconcile', 'missing.json'], io(consistent())).exitCode).toBe(2);
    const notExport = runVerifyCli(['report.json', '--reconcile', 'agent.json'], io(consistent(), '{"a":1}'));
    expect(notExport.exitCode).toBe(2);
    expect(notExport.stderr).toContain('is not a Tessera agent audit export');
  });
});
