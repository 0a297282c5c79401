import { StudyPlan } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { placeProblems, plainProblem, problemTextAt, subjectOfPath } from './plan-problems.js';

describe('plainProblem', () => {
  it("turns the shared schema's validator messages into sentences naming the field", () => {
    expect(plainProblem('Target ε', 'Invalid input: expected number, received NaN')).toBe('Target ε must be a number.');
    expect(plainProblem('Rounds', 'Invalid input: expected int, received number')).toBe(
      'Rounds must be a whole number.',
    );
    expect(plainProblem('Rounds', 'Too small: expected number to be >=1')).toBe('Rounds must be at least 1.');
    expect(plainProblem('C', 'Too small: expected number to be >0')).toBe('C must be greater than 0.');
    expect(plainProblem('δ', 'Too big: expected number to be <1')).toBe('δ must be less than 1.');
    expect(plainProblem('q', 'Too big: expected number to be <=1')).toBe('q must be at most 1.');
    expect(plainProblem('Name', 'Too small: expected string to have >=3 characters')).toBe(
      'Name needs at least 3 characters.',
    );
    expect(plainProblem('Name', 'Too small: expected string to have >=1 characters')).toBe('Name is required.');
    expect(plainProblem('Silos', 'Too small: expected array to have >=2 items')).toBe(
      'Silos needs at least 2 entries.',
    );
    expect(plainProblem('Mode', 'Invalid option: expected one of "none"|"dp-sgd"')).toBe(
      'Mode must be one of: none, dp-sgd.',
    );
  });

  it('keeps the plan rules’ own sentences, after the field’s name', () => {
    expect(plainProblem('Quorum', '3 exceeds the 2 invited silos')).toBe('Quorum: 3 exceeds the 2 invited silos');
  });

  it('covers what the shared schema says about a real wrong plan (no raw validator text left)', () => {
    const parsed = StudyPlan.safeParse({ name: 'ab', training: { rounds: Number.NaN } });
    expect(parsed.success).toBe(false);
    const messages = parsed.success ? [] : parsed.error.issues.map((i) => i.message);
    const raw = messages.filter((m) => /^(Too small|Too big|Invalid input: expected number)/.test(m));
    expect(raw.length).toBeGreaterThan(0);
    for (const m of raw) expect(plainProblem('Field', m)).toMatch(/^Field /);
  });
});

describe('placeProblems in plain words', () => {
  it('names the field by its label at the field, by its path in lists, and the item of a list field', () => {
    const [at, inside] = placeProblems(
      [
        'privacy.targetEpsilon: Invalid input: expected number, received NaN',
        'model.hiddenLayers.1: Too small: expected number to be >=1',
      ],
      ['privacy.targetEpsilon', 'model.hiddenLayers'],
    );
    expect(problemTextAt(at!, 'Target ε (whole study)')).toBe('Target ε (whole study) must be a number.');
    expect(at!.plain).toBe('Privacy target epsilon must be a number.');
    expect(problemTextAt(inside!, 'Hidden layers')).toBe('Hidden layers, item 2, must be at least 1.');
    expect(subjectOfPath('schema.features.0.name')).toBe('Schema features 1 name');
  });
});
