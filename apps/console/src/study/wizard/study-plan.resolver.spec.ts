import type { FieldError, FieldErrors } from 'react-hook-form';
import { studyPlanProblems } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { blankFeature, defaultDraft, draftToPlan, type PlanDraft } from '../../lib/plan-draft.js';
import { draftProblems, studyPlanResolver } from './study-plan.resolver.js';

const SILO = '00000000-0000-4000-8000-000000000001';

function validDraft(): PlanDraft {
  const d = defaultDraft('test-salt-0001');
  d.name = 'Cardiac risk';
  d.purpose = 'Predict coronary artery disease from routine findings.';
  d.silos = [SILO];
  d.participation.minSilosPerRound = '1';
  return d;
}

/** Runs the resolver as react-hook-form does, with the draft's field names registered. */
async function resolve(draft: PlanDraft) {
  const names = ['name', 'schema.features.0.name', 'schema.features.1.name'] as const;
  return studyPlanResolver(draft, undefined, { fields: {}, names: [...names], shouldUseNativeValidation: false });
}

function errorAt(errors: FieldErrors<PlanDraft>, path: string): FieldError | undefined {
  let node: unknown = errors;
  for (const key of path.split('.')) node = (node as Record<string, unknown> | undefined)?.[key];
  return node as FieldError | undefined;
}

describe('the study plan resolver', () => {
  it('hands over exactly the plan the hub would accept', async () => {
    const draft = validDraft();
    expect(draftProblems(draft)).toEqual([]);
    const result = await resolve(draft);
    expect(result.errors).toEqual({});
    expect(result.values).toEqual(draftToPlan(draft));
  });

  it('keys each problem by the plan path it names, every problem of a path listed', async () => {
    const draft = validDraft();
    draft.name = 'x';
    draft.schema.splitSalt = 'a b';
    const { values, errors } = await resolve(draft);
    expect(values).toEqual({});
    expect(errorAt(errors, 'name')?.message).toBe('Too small: expected string to have >=3 characters');
    const salt = errorAt(errors, 'schema.split.salt');
    expect(salt?.message).toBe('Too small: expected string to have >=8 characters');
    expect(salt?.types?.plan).toEqual([
      'Too small: expected string to have >=8 characters',
      'printable ASCII without spaces',
    ]);
  });

  it('applies the cross-field rules the hub applies, a list-wide one at the list root', async () => {
    const draft = validDraft();
    draft.training.algorithm = 'fedprox';
    draft.training.proximalMu = '';
    draft.schema.features.push({ ...blankFeature(), name: 'age' });
    const { errors } = await resolve(draft);
    expect(errorAt(errors, 'training.proximalMu')?.message).toBe('is required with the fedprox algorithm');
    expect(errorAt(errors, 'schema.features.root')?.message).toBe('column "age" appears twice');
  });

  it('reports a failed label union once, at the label, never at the operator (which zodResolver would)', async () => {
    const draft = validDraft();
    draft.schema.label.threshold = '';
    const { errors } = await resolve(draft);
    expect(studyPlanProblems(draftToPlan(draft))).toEqual(['schema.label: Invalid input']);
    expect(errorAt(errors, 'schema.label')?.message).toBe('Invalid input');
    expect(errorAt(errors, 'schema.label.operator')).toBeUndefined();
  });
});
