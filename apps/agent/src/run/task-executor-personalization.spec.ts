import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluate, initialParameters, parseModelSpec, selectBackend } from '@tessera/ml';
import { SeededRandomSource } from '@tessera/dp';
import { tabularSchemaOf, type EvaluationReport, type StudyPlan } from '@tessera/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { SiloPrivacyLedger } from '../privacy/silo-privacy-ledger';
import { ApprovalStore } from '../state/approval-store';
import { ReceiptStore } from '../state/receipt-store';
import { ReleaseStore } from '../state/release-store';
import { buildPlan, buildStudy, buildTask, FakeHub, modelBlob, readHeartDisease } from '../testing/study.test-util';
import { modelSpecOf } from '../training/plan-mapping.util';
import { StudyDatasets } from '../training/study-datasets';
import { TaskExecutor, type TaskOutcome } from './task-executor';

beforeAll(async () => {
  await selectBackend('cpu');
});

/** An approved study of `plan` at a fake hub that publishes the plan's initial model; an executor on a fresh state dir. */
function setup(plan: StudyPlan, log: (line: { message: string }) => void = () => undefined) {
  const root = mkdtempSync(join(tmpdir(), 'tessera-personal-'));
  const hub = new FakeHub();
  const study = buildStudy(plan);
  hub.studies = [study];
  const parameters = initialParameters(modelSpecOf(plan), plan.training.initSeed);
  const blob = modelBlob(parameters);
  hub.blobs.set(blob.hash, blob.bytes);
  const approvals = new ApprovalStore(root);
  approvals.record(study.studyId, {
    planHash: study.planHash,
    planVersion: study.planVersion,
    decision: 'approve',
    decidedAt: new Date().toISOString(),
    decidedBy: 'steward',
  });
  const csv = readHeartDisease();
  let trainings = 0;
  const executor = () =>
    new TaskExecutor({
      privacy: new SiloPrivacyLedger(root, undefined),
      transport: hub,
      approvals,
      receipts: new ReceiptStore(root),
      releases: new ReleaseStore(root),
      datasets: new StudyDatasets(() => {
        trainings++;
        return csv;
      }),
      log,
      random: new SeededRandomSource(`personal-${root}`),
    });
  return { root, hub, study, modelHash: blob.hash, csv, executor, reads: () => trainings };
}

function reportOf(outcome: TaskOutcome): EvaluationReport {
  if (outcome.kind !== 'evaluated') throw new Error(`expected an evaluation, got ${JSON.stringify(outcome)}`);
  return outcome.report;
}

describe('TaskExecutor: personalization at the final evaluation', () => {
  const plan: StudyPlan = {
    ...buildPlan({ release: { evaluation: { mode: 'exact', rounds: 'final' }, trainingExamples: 'none' } }),
    personalization: { method: 'fine-tune', epochs: 3, localBaseline: true },
  };

  it('keeps the personal models at the silo and reports exactly their test metrics beside the global model’s', async () => {
    const s = setup(plan);
    const report = reportOf(
      await s.executor().execute(buildTask(s.study, s.modelHash, { kind: 'evaluate', round: 4 }), s.study),
    );
    // Nothing but the report left: no upload, and the models are files in the state directory.
    expect(s.hub.uploads).toHaveLength(0);
    expect(s.hub.evaluations).toEqual([{ studyId: s.study.studyId, report }]);
    const kept = join(s.root, 'personalized', s.study.studyId);
    expect(readdirSync(kept).sort()).toEqual([`local-baseline-${s.modelHash}.f32`, `personalized-${s.modelHash}.f32`]);

    // Each payload is the exact evaluation of the kept file on this silo's test split.
    const spec = parseModelSpec(modelSpecOf(plan));
    const prepared = new StudyDatasets(() => s.csv).forStudy(s.study.studyId, s.study.planHash, tabularSchemaOf(plan));
    if (!prepared.ok) throw new Error(prepared.problem.message);
    const test = prepared.data.test;
    const metricsOf = async (file: string) => {
      const parameters = new Float32Array(new Uint8Array(readFileSync(join(kept, file))).buffer);
      const m = await evaluate(spec, parameters, test.x, test.y);
      return { accuracy: m.accuracy, loss: m.loss };
    };
    const personalized = await metricsOf(`personalized-${s.modelHash}.f32`);
    const baseline = await metricsOf(`local-baseline-${s.modelHash}.f32`);
    expect(report.personalized).toMatchObject({ kind: 'exact', n: test.n, accuracy: personalized.accuracy });
    expect(report.localBaseline).toMatchObject({ kind: 'exact', n: test.n, accuracy: baseline.accuracy });
    expect((report.personalized as { loss: number }).loss).toBeCloseTo(personalized.loss, 5);
    // Fine-tuned from the global model, trained from scratch: both differ from the global model's figures.
    expect(report.evaluation).toMatchObject({ kind: 'exact', n: test.n });
    expect((report.personalized as { loss: number }).loss).not.toBe((report.evaluation as { loss: number }).loss);
    expect(report.privacy).toBeNull();
  });

  it('after a restart re-sends the report on file: no new training, the same figures', async () => {
    const s = setup(plan);
    const task = buildTask(s.study, s.modelHash, { kind: 'evaluate', round: 4 });
    const first = reportOf(await s.executor().execute(task, s.study));
    const readsBefore = s.reads();
    const again = reportOf(await s.executor().execute({ ...task, attempt: 2 }, s.study));
    expect(again).toEqual({ ...first, attempt: 2 });
    expect(s.reads()).toBe(readsBefore);
  });

  it('reports no personal models for a plan without personalization', async () => {
    const s = setup(
      buildPlan({ release: { evaluation: { mode: 'exact', rounds: 'final' }, trainingExamples: 'none' } }),
    );
    const report = reportOf(
      await s.executor().execute(buildTask(s.study, s.modelHash, { kind: 'evaluate', round: 4 }), s.study),
    );
    expect(report).not.toHaveProperty('personalized');
    expect(report).not.toHaveProperty('localBaseline');
  });

  it("method 'select': reports the kept model chosen on the training split, and logs the choice at the silo", async () => {
    const select: StudyPlan = { ...plan, personalization: { method: 'select', epochs: 3, validationFolds: 3 } };
    const lines: string[] = [];
    const s = setup(select, (l) => lines.push(l.message));
    const report = reportOf(
      await s.executor().execute(buildTask(s.study, s.modelHash, { kind: 'evaluate', round: 4 }), s.study),
    );
    const kept = join(s.root, 'personalized', s.study.studyId);
    expect(readdirSync(kept)).toEqual([`personalized-${s.modelHash}.f32`]);
    expect(report).not.toHaveProperty('localBaseline');
    const prepared = new StudyDatasets(() => s.csv).forStudy(
      s.study.studyId,
      s.study.planHash,
      tabularSchemaOf(select),
    );
    if (!prepared.ok) throw new Error(prepared.problem.message);
    const parameters = new Float32Array(
      new Uint8Array(readFileSync(join(kept, `personalized-${s.modelHash}.f32`))).buffer,
    );
    const m = await evaluate(
      parseModelSpec(modelSpecOf(select)),
      parameters,
      prepared.data.test.x,
      prepared.data.test.y,
    );
    expect(report.personalized).toMatchObject({ kind: 'exact', n: prepared.data.test.n, accuracy: m.accuracy });
    expect(lines.filter((l) => l.startsWith('personalization: chose '))).toHaveLength(1);
    expect(lines.join('\n')).toMatch(/by 3-fold cross-validation on the training split/);
    // The choice is not in what the hub received.
    expect(JSON.stringify(s.hub.evaluations)).not.toMatch(/cross-validation|local-only/);
  });
});
