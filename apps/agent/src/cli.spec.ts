import { describe, expect, it } from 'vitest';
import { buildProgram, runCli } from './cli';

function buffers() {
  const io = { out: '', err: '' };
  return { io, cli: { out: (t: string) => void (io.out += t), err: (t: string) => void (io.err += t), env: {} } };
}

describe('tessera-agent program', () => {
  it('assembles every command module once, in the order the guides and --help list them', () => {
    const program = buildProgram(buffers().cli, { exitCode: 0 });
    const names = program.commands.map((c) => c.name());
    expect(names).toEqual(['enroll', 'status', 'renew', 'studies', 'audit', 'run', 'budget', 'privacy-audit']);
    expect(program.commands.find((c) => c.name() === 'studies')?.commands.map((c) => c.name())).toEqual([
      'list',
      'show',
      'approve',
      'reject',
    ]);
    expect(program.commands.find((c) => c.name() === 'audit')?.commands.map((c) => c.name())).toEqual([
      'export',
      'verify',
    ]);
  });

  it('answers a usage error with exit code 2 and the reason, before touching any state', async () => {
    const { io, cli } = buffers();
    expect(await runCli(['run', '--poll-wait', '99'], cli)).toBe(2);
    expect(io.err).toContain('--poll-wait must be a whole number of seconds in 1..30');
    const other = buffers();
    expect(await runCli(['budget', '--privacy-cap-epsilon', '0'], other.cli)).toBe(2);
    expect(other.io.err).toContain('the privacy cap ε must be a number above 0 (got "0")');
  });
});
