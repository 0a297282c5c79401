import { DEFAULT_SCALE_FLOORS, screenStatistics } from '@tessera/aggregation';
import { SCREENING_DEFAULT_FLOORS } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { aggregationChoiceOf, aggregationMemoryProblems, screeningOptionsOf } from './plan-aggregation.util';

const silos = (n: number) => Array.from({ length: n }, (_, k) => `silo-${k}`);
const MIB = 2 ** 20;
const BLOCKS = 65_536;

describe('a plan’s aggregation in the library’s terms', () => {
  it('is FedAvg without norm bounding, and no screening, when the plan names neither', () => {
    const plan = heartDiseasePlan(silos(4));
    expect(aggregationChoiceOf(plan)).toEqual({ aggregator: { kind: 'fedavg' } });
    expect(screeningOptionsOf(plan)).toBeNull();
  });

  it('passes the aggregator, the bound and the screening options through unchanged', () => {
    const plan = heartDiseasePlan(silos(5), {
      aggregation: {
        aggregator: { kind: 'krum', byzantine: 1, selected: 2 },
        normBound: { mode: 'median-multiple', multiplier: 3 },
      },
      screening: { threshold: 4, exclude: true, normScaleFloor: 0.1 },
    });
    expect(aggregationChoiceOf(plan)).toEqual(plan.aggregation);
    expect(screeningOptionsOf(plan)).toEqual({ threshold: 4, exclude: true, normScaleFloor: 0.1 });
  });

  it('describes to the steward the floors the library applies when the plan names none', () => {
    expect(SCREENING_DEFAULT_FLOORS).toEqual(DEFAULT_SCALE_FLOORS);
    const plan = heartDiseasePlan(silos(4), { screening: { threshold: 3.5, exclude: false } });
    const rule = screenStatistics([], screeningOptionsOf(plan)!).rule;
    expect([rule.normScaleFloor, rule.cosineScaleFloor]).toEqual([
      SCREENING_DEFAULT_FLOORS.norm,
      SCREENING_DEFAULT_FLOORS.cosine,
    ]);
  });
});

describe('the memory a plan’s aggregation needs on this hub', () => {
  const median = { aggregation: { aggregator: { kind: 'coordinate-median' as const } } };

  it('accepts 64 silos × 10M parameters with the median blockwise in the default 512 MiB', () => {
    const plan = heartDiseasePlan(silos(64), median);
    expect(aggregationMemoryProblems(plan, 10_000_000, { budgetBytes: 512 * MIB, blockParameters: BLOCKS })).toEqual(
      [],
    );
  });

  it('refuses it in 10 MiB, naming the field, every variant’s need and the setting', () => {
    const plan = heartDiseasePlan(silos(64), median);
    const problems = aggregationMemoryProblems(plan, 10_000_000, { budgetBytes: 10 * MIB, blockParameters: BLOCKS });
    expect(problems).toEqual([
      'aggregation: coordinate-wise median of 64 updates × 10,000,000 parameters needs 2.42 GiB in-memory ' +
        '(1 pass, 4nm + 4nT + 4m) or 55.1 MiB blockwise (1 pass, 4nB + 4nT + 4m); the configured aggregation memory ' +
        'is 10.0 MiB. Raise the budget, use smaller blocks, or plan fewer silos or a smaller model. ' +
        '(TESSERA_AGGREGATION_MEMORY on this hub)',
    ]);
  });

  it('refuses screening that fits in neither way, and never checks FedAvg alone', () => {
    const screened = heartDiseasePlan(silos(64), { screening: { threshold: 3.5, exclude: false } });
    const budget = { budgetBytes: 10 * MIB, blockParameters: BLOCKS };
    const [problem, ...rest] = aggregationMemoryProblems(screened, 10_000_000, budget);
    expect(rest).toEqual([]);
    expect(problem).toMatch(
      /^screening: screening 64 updates × 10,000,000 parameters needs .* blockwise \(4nB \+ 8m \+ 24n\)/,
    );
    expect(aggregationMemoryProblems(heartDiseasePlan(silos(64)), 10_000_000, budget)).toEqual([]);
  });
});
