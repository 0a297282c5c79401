import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { privacyMechanismOf } from '@tessera/dp';
import { HubErrorCode } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { AgentError, AgentErrorCode } from '../agent.error';
import { ApprovalStore } from '../state/approval-store';
import { buildPlan, buildStudy, FakeHub } from '../testing/study.test-util';
import { textContaining } from '../testing/matchers.test-util';
import { approveStudy, findStudy, formatStudy, formatStudyTable, listStudies, rejectStudy } from './studies.command';

function setup() {
  const hub = new FakeHub();
  const study = buildStudy(buildPlan(), { status: 'awaiting_approvals' });
  hub.studies = [study];
  const approvals = new ApprovalStore(mkdtempSync(join(tmpdir(), 'tessera-studies-')));
  return { hub, study, approvals };
}

describe('studies commands', () => {
  it('approve sends the hash computed from the plan and records it locally once the hub accepted', async () => {
    const { hub, study, approvals } = setup();
    const now = new Date('2025-03-01T10:00:00.000Z');
    const r = await approveStudy(hub, approvals, study.studyId.slice(0, 8), { planHash: study.planHash, now });
    expect(hub.decisions).toEqual([
      { studyId: study.studyId, request: { planHash: study.planHash, decision: 'approve' } },
    ]);
    expect(approvals.get(study.studyId)).toEqual({
      planHash: study.planHash,
      planVersion: 1,
      decision: 'approve',
      decidedAt: now.toISOString(),
      decidedBy: 'steward',
    });
    expect(r.computedHash).toBe(study.planHash);
  });

  it('refuses to approve when the steward read another hash, sending nothing', async () => {
    const { hub, study, approvals } = setup();
    await expect(approveStudy(hub, approvals, study.studyId, { planHash: 'f'.repeat(64) })).rejects.toMatchObject({
      code: AgentErrorCode.PLAN_MISMATCH,
      message: textContaining(`hashes to ${study.planHash}`),
    });
    expect(hub.decisions).toEqual([]);
    expect(approvals.get(study.studyId)).toBeUndefined();
  });

  it('refuses when the hub names a hash the plan it sent does not have', async () => {
    const { hub, study, approvals } = setup();
    study.planHash = 'e'.repeat(64);
    await expect(approveStudy(hub, approvals, study.studyId)).rejects.toMatchObject({
      code: AgentErrorCode.PLAN_MISMATCH,
    });
    expect(hub.decisions).toEqual([]);
  });

  it('records nothing when the hub answers 409 (the plan changed meanwhile)', async () => {
    const { hub, study, approvals } = setup();
    const original = hub.decide.bind(hub);
    hub.decide = async (id, request) => {
      study.planHash = 'd'.repeat(64); // a new version arrived between reading and deciding
      return original(id, request);
    };
    await expect(approveStudy(hub, approvals, study.studyId)).rejects.toMatchObject({
      code: AgentErrorCode.PLAN_MISMATCH,
      httpStatus: 409,
      message: textContaining('The plan changed at the hub'),
    });
    expect(approvals.get(study.studyId)).toBeUndefined();
  });

  it('tells a closed study from a changed plan: a 409 STUDY_STATE is the hub refusing, not a plan mismatch', async () => {
    const { hub, study, approvals } = setup();
    // What the hub answers once the study left awaiting_approvals (apps/hub studies.service decide).
    hub.decide = () =>
      Promise.reject(
        new AgentError(
          AgentErrorCode.HUB_REFUSED,
          `The hub refused the decision on study ${study.studyId}: Study "Test" is completed: decisions are closed.`,
          409,
          HubErrorCode.STUDY_STATE,
        ),
      );
    const refusal = approveStudy(hub, approvals, study.studyId);
    await expect(refusal).rejects.toMatchObject({
      code: AgentErrorCode.HUB_REFUSED,
      hubCode: HubErrorCode.STUDY_STATE,
      message: textContaining('decisions are closed'),
    });
    await expect(refusal).rejects.not.toMatchObject({ message: textContaining('plan changed') });
    expect(approvals.get(study.studyId)).toBeUndefined();
  });

  it('reject sends the reason and records the rejection', async () => {
    const { hub, study, approvals } = setup();
    await rejectStudy(hub, approvals, study.studyId, 'label definition differs from ours');
    expect(hub.decisions[0]!.request).toEqual({
      planHash: study.planHash,
      decision: 'reject',
      reason: 'label definition differs from ours',
    });
    expect(approvals.refusalFor(study.studyId, study.planHash)).toBe('this silo rejected this plan');
  });

  it('lists studies as a table and shows a plan with its full hash', async () => {
    const { hub, study, approvals } = setup();
    const table = formatStudyTable(await listStudies(hub, approvals)).split('\n');
    expect(table[0]).toMatch(/^STUDY\s+NAME\s+STATUS\s+VERSION\s+PLAN HASH\s+DECISION$/);
    expect(table[1]).toContain(study.studyId);
    expect(table[1]).toContain(study.planHash.slice(0, 12));
    expect(table[1]).toMatch(/undecided$/);

    await approveStudy(hub, approvals, study.studyId);
    const shown = formatStudy(await findStudy(hub, approvals, study.studyId));
    expect(shown).toContain(`plan hash:    ${study.planHash}`);
    expect(shown).toContain('NO differential privacy');
    // What the steward consents to release without DP, listed item by item.
    expect(shown).toMatch(
      /without DP: {3}the model update itself.*; the exact number of training records.*; test-split loss, accuracy, AUC/,
    );
    expect(shown).toMatch(/limits: {7}this agent sends at most 3 training update\(s\) and 4 evaluation release\(s\)/);
    expect(shown).not.toContain('noisy eval:');
    expect(shown).toMatch(/decision:\s+approved$/);
  });

  it('shows what a new plan version changed from the previous one, and a pause with its reason', async () => {
    const { hub, study, approvals } = setup();
    study.planVersion = 2;
    study.changesFromPrevious = [
      { path: 'training.rounds', kind: 'changed', before: 4, after: 3 },
      { path: 'screening', kind: 'added', after: { threshold: 3.5, exclude: true } },
    ];
    study.paused = { since: '2026-12-06T09:00:00.000Z', reason: 'site migration' };
    hub.studies = [study];
    const shown = formatStudy(await findStudy(hub, approvals, study.studyId)).split('\n');
    const at = shown.indexOf('changed from version 1:');
    expect(at).toBeGreaterThan(0);
    expect(shown.slice(at + 1, at + 3)).toEqual([
      '  training.rounds: 4 → 3',
      '  screening: added {"threshold":3.5,"exclude":true}',
    ]);
    expect(shown).toContain(
      'paused:       since 2026-12-06T09:00:00.000Z (site migration); no new round opens until it is resumed',
    );
  });

  it('shows a DP plan with its charged ε and, computed by the agent itself, the tighter PLD estimate', async () => {
    const hub = new FakeHub();
    const plan = buildPlan({
      privacy: {
        mode: 'dp-sgd',
        unit: 'record',
        targetEpsilon: 1,
        delta: 1e-5,
        clipNorm: 1,
        noiseMultiplier: 'derive',
        samplingRate: 0.1,
      },
    });
    const study = buildStudy(plan, { status: 'awaiting_approvals' });
    hub.studies = [study];
    const approvals = new ApprovalStore(mkdtempSync(join(tmpdir(), 'tessera-studies-')));
    const shown = formatStudy(await findStudy(hub, approvals, study.studyId));
    const tighter = /tighter:\s+ε = (\d\.\d{4}) by the pld-sampled-gaussian accountant/.exec(shown);
    expect(tighter, shown).not.toBeNull();
    expect(Number(tighter![1])).toBeLessThan(1);
    expect(Number(tighter![1])).toBeGreaterThan(0.5);
    // The default DP release: nothing without DP, a noisy final evaluation with the agent's own noise figure.
    expect(shown).toContain('without DP:   nothing');
    expect(shown).toMatch(/releases: {5}noisy test-split score histograms \(4 bins per label/);
    const m = privacyMechanismOf(plan)!;
    expect(shown).toContain(`standard deviation ${m.evaluation!.noiseStddev.toPrecision(4)} counts`);
    expect(shown).toMatch(/limits: .* at most 3 training update\(s\) and 1 evaluation release\(s\) .*stops at ε = 1/);
  });

  it('says when a study id is unknown or ambiguous', async () => {
    const { hub, approvals } = setup();
    await expect(findStudy(hub, approvals, '00000000')).rejects.toMatchObject({ code: AgentErrorCode.STUDY_NOT_FOUND });
    await expect(findStudy(hub, approvals, 'abc')).rejects.toMatchObject({ code: AgentErrorCode.STUDY_NOT_FOUND });
  });
});
