import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentCliText, hubConfigText } from './agent-cli.test-util';
import { envOf, parseDockerfile, stagesOf } from './dockerfile-rules.test-util';
import { commandsInMarkdown, parseDockerRun, shellWords } from './shell-commands.test-util';

/**
 * The guides in docs/ hold to the code: their commands exist, their variables are ones something reads, the silo
 * guide's `docker run` matches the image (agent-container.int-spec.ts runs that very line), and every error message
 * in docs/troubleshooting.md is still printed by the code.
 */

const REPO = resolve(__dirname, '../..');
const read = (path: string) => readFileSync(join(REPO, path), 'utf8');
const GUIDES = ['docs/silo-guide.md', 'docs/operator-guide.md', 'docs/troubleshooting.md'];

function sourcesUnder(dir: string): string {
  return readdirSync(join(REPO, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'))
    .map((f) => read(join(dir, f)))
    .join('\n');
}

const agentCli = agentCliText(REPO);
const hubCli = read('apps/hub/src/cli/tessera-hub.ts');
const entrypoint = read('deploy/agent-entrypoint.sh');
const agentCommands = new Set([...agentCli.matchAll(/\.command\('([a-z-]+)'\)/g)].map((m) => m[1]!));
const hubCommands = new Set([...hubCli.matchAll(/\.command\('([a-z-]+)'/g)].map((m) => m[1]!));
const agentStage = stagesOf(parseDockerfile(read('deploy/agent.Dockerfile'))).at(-1)!;

/** Every variable something in the repository reads or sets for a deployment. */
const knownVariables = new Set(
  [
    hubConfigText(REPO),
    agentCli,
    entrypoint,
    read('apps/hub/src/deploy/compose-init.ts'),
    read('docker-compose.yml'),
    read('certs/make-dev-ca.sh'),
    // CI's container run and its switches (the operator guide's CI section).
    read('.ci/containers.sh'),
    read('.ci/run'),
    // The README's example variable for `tessera-hub admin create --password-env`.
    read('README.md'),
  ].flatMap((text) => [...text.matchAll(/\b((?:TESSERA|POSTGRES)_[A-Z_]+|DATABASE_URL)\b/g)].map((m) => m[1]!)),
);

describe('docs/silo-guide.md', () => {
  const guide = read('docs/silo-guide.md');
  const run = parseDockerRun(
    commandsInMarkdown(guide).find((c) => c.startsWith('docker run') && c.includes('TESSERA_'))!,
  );

  it('installs with one docker run that matches the image: its variables, its two volumes, no port, no socket', () => {
    expect(run.image).toMatch(/^tessera-agent:/);
    expect(run.args).toEqual([]);
    expect(run.published).toEqual([]);
    expect(run.options.some((o) => /privileged|entrypoint|user|docker\.sock/.test(o))).toBe(false);
    for (const name of Object.keys(run.env)) expect(entrypoint + agentCli).toContain(name);
    const volumes = Object.fromEntries(run.volumes.map((v) => [v.target, v.readOnly]));
    expect(volumes).toEqual({ '/data': true, [envOf(agentStage).TESSERA_STATE_DIR!]: false });
    expect(run.env.TESSERA_DATA_FILE!.startsWith('/data/')).toBe(true);
    expect(
      agentStage.instructions
        .filter((i) => i.keyword === 'VOLUME')
        .map((i) => i.args)
        .join(),
    ).toContain(envOf(agentStage).TESSERA_STATE_DIR);
  });

  it('mentions the privacy budget command, which the agent has', () => {
    expect(guide).toContain('tessera-agent budget');
    expect(agentCommands).toContain('budget');
  });
});

describe('the guides', () => {
  it.each(GUIDES)('%s: every `tessera-agent` command it shows exists', (file) => {
    for (const words of commandsInMarkdown(read(file)).map(shellWords)) {
      // `docker exec <container> tessera-agent …` and `kubectl exec <pod> -- tessera-agent …`
      const at =
        words[0] === 'docker' && words[1] === 'exec'
          ? words.findIndex((w, i) => i > 1 && !w.startsWith('-') && words[i - 1] !== '-e') + 1
          : words[0] === 'kubectl' && words.includes('exec')
            ? words.indexOf('--') + 1
            : -1;
      if (at <= 0 || words[at] !== 'tessera-agent') continue;
      const [command, sub] = words.slice(at + 1);
      expect(agentCommands, words.join(' ')).toContain(command);
      if (command === 'studies' || command === 'audit') expect(agentCommands, words.join(' ')).toContain(sub);
    }
  });

  it.each(GUIDES)('%s: every hub command it shows exists (tessera-hub, or the image run with a command)', (file) => {
    for (const words of commandsInMarkdown(read(file)).map(shellWords)) {
      const direct = words.indexOf('tessera-hub');
      const viaCompose =
        words[0] === 'docker' && words[1] === 'compose' && words[2] === 'run' ? words.indexOf('hub') : -1;
      const at = direct >= 0 ? direct : viaCompose;
      if (at < 0) continue;
      expect(hubCommands, words.join(' ')).toContain(words[at + 1]);
    }
  });

  it.each(GUIDES)('%s: every variable it names is one the hub, the agent or the deployment files know', (file) => {
    const named = [...read(file).matchAll(/\b((?:TESSERA|POSTGRES)_[A-Z_]+)\b/g)].map((m) => m[1]!);
    expect(named.filter((n) => !knownVariables.has(n))).toEqual([]);
  });

  it.each(GUIDES)('%s: every repository path it names exists (scripts executable)', (file) => {
    const paths = [...read(file).matchAll(/`((?:deploy|certs|apps|docs|libs)\/[A-Za-z0-9_./-]+)`/g)].map((m) => m[1]!);
    // certs/out is made by certs/make-dev-ca.sh, never committed.
    for (const p of paths.filter((x) => !/^certs\/out(\/|$)/.test(x))) {
      expect(existsSync(join(REPO, p)), p).toBe(true);
      if (p.endsWith('.sh')) expect(() => accessSync(join(REPO, p), constants.X_OK)).not.toThrow();
    }
    for (const link of [...read(file).matchAll(/\]\(([a-z-]+\.md)(#[a-z-]+)?\)/g)]) {
      expect(existsSync(join(REPO, 'docs', link[1]!)), link[1]).toBe(true);
    }
  });
});

describe('docs/troubleshooting.md', () => {
  // Strings may be split across lines with +; join them so a message reads as it prints.
  const code = [
    sourcesUnder('apps/agent/src'),
    sourcesUnder('apps/hub/src'),
    sourcesUnder('libs/pki/src'),
    entrypoint,
    read('certs/make-dev-ca.sh'),
    read('docker-compose.yml'),
  ]
    .join('\n')
    .replace(/['`"]\s*\+\s*\n?\s*['`"]/g, '')
    .replace(/\\"/g, '"');
  const headings = [...read('docs/troubleshooting.md').matchAll(/^### `(.+)`$/gm)].map((m) => m[1]!);

  it('has an entry for the main failures of each part', () => {
    expect(headings.length).toBeGreaterThanOrEqual(25);
    expect(statSync(join(REPO, 'docs/troubleshooting.md')).size).toBeGreaterThan(4000);
  });

  it.each(headings)('"%s" is printed by the code', (message) => {
    // Literal pieces between the <placeholders> must all be in the sources, in the words the reader sees.
    const pieces = message
      .split(/<[^>]+>/)
      .map((p) => p.trim())
      .filter((p) => p.length >= 4);
    expect(pieces.length).toBeGreaterThan(0);
    for (const piece of pieces) expect(code, piece).toContain(piece);
  });
});
