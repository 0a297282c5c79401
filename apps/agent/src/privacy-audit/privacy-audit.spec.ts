import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chargedEpsilon, privacyMechanismOf } from '@tessera/dp';
import {
  heartDiseaseDataDirectory,
  initialParameters,
  parseCsv,
  prepareTabularData,
  selectBackend,
  trainLocal,
  type LogisticRegressionSpec,
} from '@tessera/ml';
import { StudyPlan } from '@tessera/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { AgentError, AgentErrorCode } from '../agent.error';
import { runCli } from '../cli';
import { modelSpecOf, tabularSchemaOf } from '../training/plan-mapping.util';
import {
  csvLine,
  logisticGradient,
  makeCanary,
  parseAuditBase,
  withCanary,
  type CanaryKind,
} from './audit-canary.util';
import { heartDiseaseAuditPlan, underNoisedPlan } from './audit-plan.util';
import { runPrivacyAudit } from './privacy-audit';
import { parsePrivacyAuditFlags, PRIVACY_AUDIT_DEFAULTS } from './privacy-audit.command';

const text = readFileSync(join(heartDiseaseDataDirectory(), 'processed.cleveland.data'), 'utf8');
const plan = heartDiseaseAuditPlan();
const schema = tabularSchemaOf(plan);
const spec = modelSpecOf(plan) as LogisticRegressionSpec;
const base = initialParameters(spec, plan.training.initSeed);

beforeAll(async () => {
  await selectBackend('cpu');
});

function prepared(csv: string) {
  return prepareTabularData(csv, schema);
}

describe('canaries', () => {
  const without = prepared(text);

  it.each(['duplicate', 'outlier', 'mislabeled'] as const)(
    'a %s canary is one more TRAINING record: the neighbouring file has one more training row and the same test rows',
    (kind: CanaryKind) => {
      const canary = makeCanary(kind, text, schema, spec, base);
      expect(canary.split).toBe('train');
      const withIt = prepared(withCanary(text, canary));
      expect(withIt.train.n).toBe(without.train.n + 1);
      expect(withIt.test.n).toBe(without.test.n);
      // Appended last, it is the last training record, encoded exactly as the audit's distinguisher assumes.
      const d = withIt.featureNames.length;
      expect(Array.from(withIt.train.x.subarray((withIt.train.n - 1) * d))).toEqual(Array.from(canary.x));
      expect(withIt.train.y[withIt.train.n - 1]).toBe(canary.y);
    },
  );

  it('a held-out canary is one more TEST record and leaves the training split unchanged', () => {
    const canary = makeCanary('held-out', text, schema, spec, base);
    const withIt = prepared(withCanary(text, canary));
    expect(canary.split).toBe('test');
    expect(withIt.test.n).toBe(without.test.n + 1);
    expect(Array.from(withIt.train.x)).toEqual(Array.from(without.train.x));
  });

  it('a duplicate copies a row of the file, and a mislabeled canary flips a row’s label', () => {
    const rows = parseCsv(text).map((r) => csvLine(r));
    expect(rows).toContain(csvLine(makeCanary('duplicate', text, schema, spec, base).cells));
    const mislabeled = makeCanary('mislabeled', text, schema, spec, base);
    const line = Number(/line (\d+)/.exec(mislabeled.description)![1]);
    // The file has no header (the schema names the columns): line k is row k − 1, a training record.
    const original = prepared(rows[line - 1]! + '\n');
    expect(original.train.n).toBe(1);
    expect(mislabeled.y).toBe(1 - original.train.y[0]!);
  });

  it('an outlier takes the ends of the file’s observed ranges and a gradient opposed to the others’', () => {
    const canary = makeCanary('outlier', text, schema, spec, base);
    const columns = parseAuditBase(text, schema).columns;
    const rows = parseCsv(text);
    const chol = columns.indexOf('chol');
    const observed = rows.map((r) => Number(r[chol])).filter(Number.isFinite);
    expect([Math.min(...observed), Math.max(...observed)]).toContain(Number(canary.cells[chol]));
    const data = prepared(text);
    const d = spec.inputDim;
    const mean = new Float64Array(d + 1);
    for (let i = 0; i < data.train.n; i++) {
      const y = data.train.y[i] === 1 ? 1 : 0;
      logisticGradient(spec, base, data.train.x.subarray(i * d, (i + 1) * d), y).forEach((v, j) => (mean[j]! += v));
    }
    const g = logisticGradient(spec, base, canary.x, canary.y);
    expect(g.reduce((a, v, j) => a + v * mean[j]!, 0)).toBeLessThan(0);
  });

  it('the closed-form gradient is what one plain SGD step of @tessera/ml moves against (lr = 1, batch of one)', async () => {
    const canary = makeCanary('outlier', text, schema, spec, base);
    const step = await trainLocal({
      spec,
      parameters: base,
      x: canary.x,
      y: Uint8Array.of(canary.y),
      steps: 1,
      batchSize: 1,
      learningRate: 1,
    });
    const g = logisticGradient(spec, base, canary.x, canary.y);
    g.forEach((v, i) => expect(step.delta[i]).toBeCloseTo(-v, 4));
  });

  it('quotes cells so a re-serialised row reads back the same', () => {
    const cells = ['a,b', 'say "hi"', '3'];
    expect(parseCsv(csvLine(cells) + '\n')).toEqual([cells]);
  });

  it('refuses a file without data rows, naming the problem', () => {
    expect(() => makeCanary('duplicate', '', schema, spec, base)).toThrow(/no data rows/);
  });
});

describe('audit plans', () => {
  it('the default is the demo plan with one round, charged its target ε for that round', () => {
    expect(StudyPlan.parse(plan)).toEqual(plan);
    expect(plan.training.rounds).toBe(1);
    const m = privacyMechanismOf(plan)!;
    expect(m).toMatchObject({ mechanism: 'dp-sgd', unit: 'record', samplingRate: 0.1, stepsPerRound: 50, delta: 1e-5 });
    expect(chargedEpsilon(m, 1, 0)).toBeLessThanOrEqual(1);
    expect(chargedEpsilon(m, 1, 0)).toBeGreaterThan(0.99);
  });

  it('the positive control keeps everything but the noise, which it cuts by an order of magnitude', () => {
    const control = underNoisedPlan(plan);
    const honest = privacyMechanismOf(plan)!;
    const weak = privacyMechanismOf(control)!;
    expect(weak.noiseMultiplier).toBeLessThan(honest.noiseMultiplier / 5);
    expect(weak.evaluation!.noiseStddev).toBeLessThan(honest.evaluation!.noiseStddev / 5);
    expect({ ...control, privacy: null }).toEqual({ ...plan, privacy: null });
  });

  it('refuses a target ε or sampling rate outside the plan schema', () => {
    expect(() => heartDiseaseAuditPlan({ targetEpsilon: 0 })).toThrow(/target ε/);
    expect(() => heartDiseaseAuditPlan({ samplingRate: 1.5 })).toThrow(/sampling rate/);
  });
});

describe('runPrivacyAudit input checks', () => {
  const usage = (err: unknown) => err instanceof AgentError && err.code === AgentErrorCode.USAGE;

  it('refuses fewer than 4 runs per world', async () => {
    await expect(
      runPrivacyAudit({ data: { text, name: 'x' }, canary: 'duplicate', runsPerWorld: 3 }),
    ).rejects.toSatisfy(usage);
  });

  it('refuses a plan without DP-SGD: no record-level claim to audit', async () => {
    const noDp = StudyPlan.parse({
      ...plan,
      privacy: { mode: 'none' },
      release: { evaluation: { mode: 'exact', rounds: 'every' }, trainingExamples: 'exact' },
    });
    await expect(
      runPrivacyAudit({ data: { text, name: 'x' }, canary: 'duplicate', runsPerWorld: 4, plan: noDp }),
    ).rejects.toThrow(/must use DP-SGD/);
  });

  it('refuses a held-out canary when the plan releases no noisy evaluation', async () => {
    const silent = StudyPlan.parse({ ...plan, release: { evaluation: { mode: 'none' }, trainingExamples: 'none' } });
    await expect(
      runPrivacyAudit({ data: { text, name: 'x' }, canary: 'held-out', runsPerWorld: 4, plan: silent }),
    ).rejects.toThrow(/no noisy evaluation/);
  });
});

describe('privacy-audit flags', () => {
  const flags = { ...PRIVACY_AUDIT_DEFAULTS, data: 'silo.csv' };

  it('parses the defaults', () => {
    expect(parsePrivacyAuditFlags(flags, {})).toMatchObject({
      runsPerWorld: 100,
      canary: 'duplicate',
      targetEpsilon: 1,
      samplingRate: 0.1,
      confidence: 0.95,
      positiveControl: false,
      jsonFile: null,
    });
  });

  it.each([
    [{ runs: '2' }, /--runs/],
    [{ runs: '10.5' }, /--runs/],
    [{ canary: 'typo' }, /--canary must be one of duplicate, outlier, mislabeled, held-out/],
    [{ epsilon: '0' }, /--epsilon/],
    [{ epsilon: '' }, /--epsilon/],
    [{ samplingRate: '2' }, /--sampling-rate/],
    [{ confidence: '1' }, /--confidence/],
    [{ data: undefined }, /--data/],
  ])('refuses %o with a usage error naming the flag', (override, message) => {
    const call = () => parsePrivacyAuditFlags({ ...flags, ...override }, {});
    expect(call).toThrow(message);
    expect(call).toThrow(AgentError);
  });

  it('takes the data file from TESSERA_DATA_FILE when --data is absent', () => {
    expect(parsePrivacyAuditFlags({ ...flags, data: undefined }, { TESSERA_DATA_FILE: '/d/x.csv' }).dataFile).toBe(
      '/d/x.csv',
    );
  });
});

describe('tessera-agent privacy-audit', () => {
  async function cli(args: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(['privacy-audit', ...args], {
      out: (t) => out.push(t),
      err: (t) => err.push(t),
      env: {},
    });
    return { code, out: out.join(''), err: err.join('') };
  }

  it('exits 2 with the reason for bad input, before any run', async () => {
    const dataFile = join(heartDiseaseDataDirectory(), 'processed.cleveland.data');
    await expect(cli(['--data', dataFile, '--runs', '3'])).resolves.toMatchObject({ code: 2, err: /--runs must be/ });
    await expect(cli(['--data', '/nonexistent/silo.csv'])).resolves.toMatchObject({
      code: 2,
      err: /cannot be read \(ENOENT\)/,
    });
    await expect(cli([])).resolves.toMatchObject({ code: 2, err: /--data/ });
  });
});
