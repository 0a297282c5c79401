import { HEART_DISEASE_SCHEMA, type StudyPlan } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { defaultDraft, draftToPlan, planToDraft } from './plan-draft.js';

describe('plan drafts', () => {
  it('start from the shared Fed-Heart-Disease schema, and round-trip a schema through the draft unchanged', () => {
    const plan = draftToPlan(defaultDraft()) as StudyPlan;
    expect(plan.schema).toEqual(HEART_DISEASE_SCHEMA);
    expect((draftToPlan(planToDraft(plan)) as StudyPlan).schema).toEqual(HEART_DISEASE_SCHEMA);
  });
});
