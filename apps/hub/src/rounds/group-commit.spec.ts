import { describe, expect, it } from 'vitest';
import { GroupCommit, type MemberOutcome } from './group-commit';

/** A `run` whose batches end only when the test says so; it records each batch it was given. */
function controlledRun() {
  const batches: { key: string; members: number[]; end: (outcomes?: MemberOutcome<string>[] | Error) => void }[] = [];
  const run = (key: string, members: number[]) =>
    new Promise<MemberOutcome<string>[]>((resolve, reject) => {
      batches.push({
        key,
        members,
        end: (outcomes) => {
          if (outcomes instanceof Error) reject(outcomes);
          else resolve(outcomes ?? members.map((m) => ({ ok: true, value: `${key}:${m}` })));
        },
      });
    });
  return { batches, run };
}

const settled = <T>(p: Promise<T>) =>
  p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );

/** Lets pending callbacks run (the batch loop continues after a batch ends). */
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('GroupCommit', () => {
  it('runs a lone member at once, in a batch of its own', async () => {
    const { batches, run } = controlledRun();
    const group = new GroupCommit(64, run);
    const one = group.submit('r', 1);
    expect(batches.map((b) => b.members)).toEqual([[1]]);
    expect(group.pending('r')).toBe(1);
    batches[0]!.end();
    expect(await one).toBe('r:1');
    expect(group.pending('r')).toBe(0);
  });

  it('members submitted while a batch runs wait, then go together in arrival order', async () => {
    const { batches, run } = controlledRun();
    const group = new GroupCommit(64, run);
    const all = [1, 2, 3, 4, 5].map((m) => group.submit('r', m));
    expect(batches.map((b) => b.members)).toEqual([[1]]);
    expect(group.pending('r')).toBe(5);
    batches[0]!.end();
    await turn();
    expect(batches.map((b) => b.members)).toEqual([[1], [2, 3, 4, 5]]);
    batches[1]!.end();
    expect(await Promise.all(all)).toEqual(['r:1', 'r:2', 'r:3', 'r:4', 'r:5']);
  });

  it('takes at most `cap` members per batch', async () => {
    const { batches, run } = controlledRun();
    const group = new GroupCommit(2, run);
    const all = [1, 2, 3, 4, 5, 6].map((m) => group.submit('r', m));
    for (let i = 0; i < 4; i += 1) {
      batches[i]!.end();
      await turn();
    }
    expect(batches.map((b) => b.members)).toEqual([[1], [2, 3], [4, 5], [6]]);
    expect(await Promise.all(all)).toHaveLength(6);
  });

  it('settles members only after their batch ended, each with its own outcome', async () => {
    const { batches, run } = controlledRun();
    const group = new GroupCommit(64, run);
    const first = group.submit('r', 1);
    const [a, b, c] = [2, 3, 4].map((m) => settled(group.submit('r', m))) as [
      ReturnType<typeof settled>,
      ReturnType<typeof settled>,
      ReturnType<typeof settled>,
    ];
    batches[0]!.end();
    await first;
    await turn();
    let answered = false;
    void a.then(() => (answered = true));
    await turn();
    expect(answered).toBe(false);
    const refusal = new Error('refused: 3');
    batches[1]!.end([
      { ok: true, value: 'two' },
      { ok: false, error: refusal },
      { ok: true, value: 'four' },
    ]);
    expect(await Promise.all([a, b, c])).toEqual([{ value: 'two' }, { error: refusal }, { value: 'four' }]);
  });

  it('a batch that fails fails all its members; the next batch still runs', async () => {
    const { batches, run } = controlledRun();
    const group = new GroupCommit(64, run);
    const first = settled(group.submit('r', 1));
    const second = [2, 3].map((m) => settled(group.submit('r', m)));
    const lost = new Error('COMMIT failed');
    batches[0]!.end(lost);
    expect(await first).toEqual({ error: lost });
    await turn();
    const third = settled(group.submit('r', 4));
    batches[1]!.end(lost);
    expect(await Promise.all(second)).toEqual([{ error: lost }, { error: lost }]);
    await turn();
    batches[2]!.end();
    expect(await third).toEqual({ value: 'r:4' });
  });

  it('a run that returns the wrong number of outcomes fails its batch', async () => {
    const { batches, run } = controlledRun();
    const group = new GroupCommit(64, run);
    const one = settled(group.submit('r', 1));
    batches[0]!.end([]);
    expect(String(((await one) as { error: unknown }).error)).toContain('a batch of 1 returned 0 outcomes');
  });

  it('keys run independently: a running batch of one key does not hold another', async () => {
    const { batches, run } = controlledRun();
    const group = new GroupCommit(64, run);
    void group.submit('r1', 1);
    const other = group.submit('r2', 2);
    expect(batches.map((b) => [b.key, b.members])).toEqual([
      ['r1', [1]],
      ['r2', [2]],
    ]);
    batches[1]!.end();
    expect(await other).toBe('r2:2');
    batches[0]!.end();
  });

  it('refuses a cap that is not a positive integer', () => {
    expect(() => new GroupCommit(0, () => Promise.resolve([]))).toThrow(RangeError);
  });
});
