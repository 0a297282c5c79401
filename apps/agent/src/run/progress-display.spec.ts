import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { buildPlan, buildStudy, buildTask } from '../testing/study.test-util';
import { plainDisplay, progressDisplayFor, terminalDisplay } from './progress-display';

function fakeTerminal(): { stream: NodeJS.WriteStream; text: () => string } {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream & PassThrough;
  Object.assign(stream, { isTTY: true, columns: 120, rows: 40 });
  let out = '';
  (stream as unknown as PassThrough).on('data', (c: Buffer) => (out += c.toString()));
  return { stream, text: () => out };
}

describe('the run command’s progress display', () => {
  it('draws a bar per study in a terminal: training rounds plus the final evaluation', () => {
    const { stream, text } = fakeTerminal();
    const display = terminalDisplay(stream);
    const plan = buildPlan();
    plan.training.rounds = 10;
    const study = buildStudy(plan);
    display.line('a step line');
    display.taskDone(buildTask(study, 'ab'.repeat(32), { round: 3 }), study, {
      kind: 'evaluated',
      report: {
        round: 3,
        attempt: 1,
        planHash: study.planHash,
        modelHash: 'ab'.repeat(32),
        evaluation: null,
        privacy: null,
      },
    });
    display.line('a later line');
    display.taskDone(buildTask(study, 'ab'.repeat(32), { round: 4 }), study, { kind: 'skipped', reason: 'deadline' });
    display.stop();
    expect(text()).toContain('a step line');
    expect(text()).toContain('a later line');
    expect(text()).toContain(plan.name);
    expect(text()).toContain('round 3/11');
    expect(text()).toContain('skipped');
  });

  it('prints plain lines when the output is not a terminal, or under CI', () => {
    const lines: string[] = [];
    const plain = plainDisplay((t) => lines.push(t));
    plain.line('one');
    plain.stop();
    expect(lines).toEqual(['one']);
    const { stream } = fakeTerminal();
    const written: string[] = [];
    progressDisplayFor(stream, (t) => written.push(t), { CI: 'true' }).line('two');
    expect(written).toEqual(['two']);
    const notTty = new PassThrough() as unknown as NodeJS.WriteStream;
    progressDisplayFor(notTty, (t) => written.push(t), {}).line('three');
    expect(written).toEqual(['two', 'three']);
  });
});
