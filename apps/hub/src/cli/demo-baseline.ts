import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { modelSpecOf, tabularSchemaOf, type StudyPlan } from '@tessera/protocol';

export interface PooledBaseline {
  /** Test accuracy per hospital of the model trained on all hospitals' training splits pooled. */
  perHospital: Record<string, number>;
  meanAccuracy: number;
  epochs: number;
}

/**
 * The centralized reference the federated model is compared with: the same model and preprocessing, trained on
 * the union of the four hospitals' training splits, evaluated on each hospital's own test split. Each file is
 * prepared exactly as its agent prepares it (the plan's declared scaling, the keyed-hash split), so the records
 * and their encodings are the same as in the federated run. This is what pooling the data would give — the thing
 * hospitals cannot do.
 */
export async function pooledBaseline(
  plan: StudyPlan,
  dataDir: string,
  files: Record<string, string>,
): Promise<PooledBaseline> {
  const ml = await import('@tessera/ml');
  await ml.selectBackend();
  const spec = ml.parseModelSpec(modelSpecOf(plan));
  const prepared = Object.fromEntries(
    Object.entries(files).map(([name, file]) => [
      name,
      ml.prepareTabularData(readFileSync(join(dataDir, file), 'utf8'), tabularSchemaOf(plan)),
    ]),
  );
  const d = spec.inputDim;
  const trains = Object.values(prepared).map((p) => p.train);
  const n = trains.reduce((a, t) => a + t.n, 0);
  const x = new Float32Array(n * d);
  const y = new Uint8Array(n);
  let row = 0;
  for (const t of trains) {
    x.set(t.x, row * d);
    y.set(t.y, row);
    row += t.n;
  }
  const epochs = plan.training.rounds * plan.training.localEpochs;
  const trained = await ml.trainLocal({
    spec,
    parameters: ml.initialParameters(spec, plan.training.initSeed),
    x,
    y,
    epochs,
    batchSize: plan.training.batchSize,
    learningRate: plan.training.learningRate,
    seed: plan.training.initSeed,
  });
  const perHospital: Record<string, number> = {};
  for (const [name, p] of Object.entries(prepared)) {
    perHospital[name] = (await ml.evaluate(spec, trained.parameters, p.test.x, p.test.y)).accuracy;
  }
  const values = Object.values(perHospital);
  return { perHospital, meanAccuracy: values.reduce((a, b) => a + b, 0) / values.length, epochs };
}
