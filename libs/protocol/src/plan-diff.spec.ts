import { describe, expect, it } from 'vitest';
import { describePlanChanges, planChanges, planValueText } from './plan-diff';
import { planForTest as validPlan } from './study-plan.test-util';

describe('planChanges', () => {
  it('finds nothing between a plan and its copy', () => {
    const plan = validPlan();
    expect(planChanges(plan, structuredClone(plan))).toEqual([]);
  });

  it('names each changed, added and removed field by its path, in path order', () => {
    const before = validPlan();
    const after = structuredClone(before) as Record<string, unknown> & typeof before;
    after.training = { ...after.training, rounds: after.training.rounds + 2 };
    after.silos = [...after.silos, '00000000-0000-4000-8000-00000000000f'];
    (after as Record<string, unknown>).screening = { threshold: 3.5, exclude: true };
    delete (after as Partial<typeof after>).purpose;
    const changes = planChanges(before, after);
    expect(changes.map((c) => [c.path, c.kind])).toEqual([
      ['purpose', 'removed'],
      ['screening', 'added'],
      ['silos', 'changed'],
      ['training.rounds', 'changed'],
    ]);
    expect(changes.find((c) => c.path === 'training.rounds')).toMatchObject({
      before: before.training.rounds,
      after: before.training.rounds + 2,
    });
    expect(changes.find((c) => c.path === 'silos')).toMatchObject({ before: before.silos, after: after.silos });
  });

  it('compares arrays of objects element by element (a renamed feature is one change)', () => {
    const before = { features: [{ name: 'age' }, { name: 'sex' }] };
    const after = { features: [{ name: 'age' }, { name: 'gender' }, { name: 'cp' }] };
    expect(planChanges(before, after)).toEqual([
      { path: 'features.1.name', kind: 'changed', before: 'sex', after: 'gender' },
      { path: 'features.2', kind: 'added', after: { name: 'cp' } },
    ]);
  });

  it('describes changes one per line, long values cut', () => {
    expect(
      describePlanChanges([
        { path: 'training.rounds', kind: 'changed', before: 10, after: 12 },
        { path: 'screening', kind: 'added', after: { exclude: true } },
        { path: 'purpose', kind: 'removed', before: 'x' },
      ]),
    ).toEqual(['training.rounds: 10 → 12', 'screening: added {"exclude":true}', 'purpose: removed (was x)']);
    expect(planValueText('y'.repeat(300), 20)).toHaveLength(20);
  });
});
