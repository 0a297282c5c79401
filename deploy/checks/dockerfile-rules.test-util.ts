/**
 * A small, honest Dockerfile checker for the rules this project relies on (no hadolint here: it is neither in
 * Debian bookworm nor installable from npm without a network download). It parses instructions (comments, line
 * continuations, JSON and shell forms) and checks:
 *   multi-stage        at least two FROM, the last one a runtime stage
 *   base-arg           every external base image is named by a build argument declared before the first FROM, so a
 *                      site (or CI, without a registry) can substitute its own base without editing the file
 *   pinned-base        every external base image (the build argument's default) has an explicit version tag (not
 *                      latest) or a digest
 *   slim-runtime       the final stage is based on a -slim image
 *   non-root           the final stage's last USER is set and is neither root nor 0
 *   healthcheck        the final stage declares a HEALTHCHECK with a command
 *   no-secret-env      no ENV/ARG whose name looks like a secret carries a value
 *   no-secret-copy     no COPY/ADD of .env files, *.pem or *.key
 *   no-add-url         ADD is not used to fetch URLs (use RUN with a checksum)
 *   production-deps    the final stage's node_modules come from a stage installed with --omit=dev
 * It does not build, run or resolve anything: it reads text.
 */

export interface Instruction {
  keyword: string;
  /** Arguments as written, continuation lines joined with a space. */
  args: string;
  line: number;
}

export interface Stage {
  /** The base image, build arguments replaced by their defaults (as a plain `docker build` resolves it). */
  image: string;
  /** The base image as written in FROM, e.g. `${NODE_IMAGE}`. */
  written: string;
  name: string | undefined;
  instructions: Instruction[];
}

export interface Finding {
  rule: string;
  message: string;
  line: number;
}

/** Splits a Dockerfile into instructions (parser directives and comments dropped). */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split(/\r?\n/);
  let current: { parts: string[]; line: number } | undefined;
  lines.forEach((raw, index) => {
    const trimmed = raw.trim();
    if (current === undefined && (trimmed === '' || trimmed.startsWith('#'))) return;
    // Comment lines inside a continued instruction are skipped by Docker, not ending it.
    if (current !== undefined && trimmed.startsWith('#')) return;
    const continued = /\\\s*$/.test(raw);
    const body = continued ? raw.replace(/\\\s*$/, '') : raw;
    if (current === undefined) current = { parts: [], line: index + 1 };
    current.parts.push(body.trim());
    if (!continued) {
      const joined = current.parts.filter((p) => p !== '').join(' ');
      const m = /^(\S+)\s*(.*)$/s.exec(joined);
      if (m) out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!, line: current.line });
      current = undefined;
    }
  });
  return out;
}

/**
 * Build arguments declared before the first FROM, with their defaults (undefined when none): the only arguments a
 * FROM line can use.
 */
export function globalArgs(instructions: Instruction[]): Record<string, string | undefined> {
  const args: Record<string, string | undefined> = {};
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') break;
    if (ins.keyword !== 'ARG') continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(ins.args.trim());
    if (m) args[m[1]!] = m[2]?.replace(/^(["'])(.*)\1$/, '$2');
  }
  return args;
}

/** Replaces `${NAME}` and `$NAME` by the argument's default; an argument without one becomes the empty string. */
function substitute(text: string, args: Record<string, string | undefined>): string {
  return text.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (_, a: string, b: string) => args[a ?? b] ?? '',
  );
}

/** Groups instructions by FROM; ARG before the first FROM (global build arguments) resolves the FROM lines. */
export function stagesOf(instructions: Instruction[]): Stage[] {
  const args = globalArgs(instructions);
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const words = ins.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      const as = words.findIndex((w) => w.toUpperCase() === 'AS');
      const written = words[0] ?? '';
      stages.push({
        image: substitute(written, args),
        written,
        name: as >= 0 ? words[as + 1] : undefined,
        instructions: [ins],
      });
    } else if (stages.length > 0) {
      stages[stages.length - 1]!.instructions.push(ins);
    }
  }
  return stages;
}

/** ENV of a stage as a map (both `ENV A=1 B=2` and the legacy `ENV A 1`). */
export function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ins of stage.instructions.filter((i) => i.keyword === 'ENV')) {
    if (!ins.args.includes('=')) {
      const [name, ...rest] = ins.args.split(/\s+/);
      env[name!] = rest.join(' ');
      continue;
    }
    for (const m of ins.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g)) {
      env[m[1]!] = m[2]!.replace(/^["']|["']$/g, '');
    }
  }
  return env;
}

/** Arguments of an exec-form instruction (`["a", "b"]`), or a shell form wrapped as /bin/sh -c. */
export function execForm(args: string): string[] {
  const text = args.trim();
  if (text.startsWith('[')) return JSON.parse(text) as string[];
  return ['/bin/sh', '-c', text];
}

const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|PASSPHRASE|PRIVATE_KEY|API_KEY|ACCESS_KEY|CREDENTIAL)/i;

function isPinned(image: string): boolean {
  if (image.includes('@sha256:')) return true;
  const slash = image.lastIndexOf('/');
  const colon = image.indexOf(':', slash + 1);
  if (colon < 0) return false;
  const tag = image.slice(colon + 1);
  // A version tag starts with a digit and names at least major.minor (node:20-slim moves with every release).
  return tag !== 'latest' && /^\d+\.\d+/.test(tag);
}

/** Checks the rules listed at the top of this file; an empty list means the Dockerfile passes. */
export function checkDockerfile(text: string): Finding[] {
  const findings: Finding[] = [];
  const stages = stagesOf(parseDockerfile(text));
  const names = new Set(stages.map((s) => s.name).filter((n): n is string => n !== undefined));
  if (stages.length < 2) {
    findings.push({ rule: 'multi-stage', message: 'build and runtime must be separate stages', line: 1 });
  }
  for (const stage of stages) {
    const from = stage.instructions[0]!;
    if (!names.has(stage.image) && !/^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$/.test(stage.written)) {
      findings.push({
        rule: 'base-arg',
        message: `base image ${stage.written} is written in FROM; name it by a build argument (ARG before the first FROM)`,
        line: from.line,
      });
    }
    if (!names.has(stage.image) && !isPinned(stage.image)) {
      findings.push({ rule: 'pinned-base', message: `base image ${stage.image} has no version tag`, line: from.line });
    }
    for (const ins of stage.instructions) {
      if (ins.keyword === 'ENV' || ins.keyword === 'ARG') {
        const pairs =
          ins.keyword === 'ENV'
            ? Object.entries(envOf({ ...stage, instructions: [ins] }))
            : [[ins.args.split('=')[0]!.trim(), ins.args.includes('=') ? ins.args.split('=').slice(1).join('=') : '']];
        for (const [name, value] of pairs) {
          if (SECRET_NAME.test(name!) && value !== '') {
            findings.push({
              rule: 'no-secret-env',
              message: `${ins.keyword} ${name} bakes a secret into the image`,
              line: ins.line,
            });
          }
        }
      }
      if (ins.keyword === 'COPY' || ins.keyword === 'ADD') {
        const sources = ins.args
          .split(/\s+/)
          .filter((w) => !w.startsWith('--'))
          .slice(0, -1);
        for (const src of sources) {
          if (/(^|\/)\.env(\.|$)|\.pem$|\.key$/.test(src)) {
            findings.push({ rule: 'no-secret-copy', message: `${ins.keyword} ${src} copies a secret`, line: ins.line });
          }
        }
      }
      if (ins.keyword === 'ADD' && /\bhttps?:\/\//.test(ins.args)) {
        findings.push({ rule: 'no-add-url', message: 'ADD fetches a URL without a checksum', line: ins.line });
      }
    }
  }
  const final = stages[stages.length - 1];
  if (final === undefined) {
    findings.push({ rule: 'multi-stage', message: 'no FROM', line: 1 });
    return findings;
  }
  const finalLine = final.instructions[0]!.line;
  if (!/-slim(\b|$)/.test(final.image)) {
    findings.push({
      rule: 'slim-runtime',
      message: `runtime stage uses ${final.image}, not a -slim image`,
      line: finalLine,
    });
  }
  const users = final.instructions.filter((i) => i.keyword === 'USER');
  const user = users[users.length - 1]?.args.split(':')[0]?.trim();
  if (user === undefined || user === 'root' || user === '0') {
    findings.push({ rule: 'non-root', message: 'the runtime stage must end as a non-root USER', line: finalLine });
  }
  const health = final.instructions.filter((i) => i.keyword === 'HEALTHCHECK');
  if (health.length === 0 || /^NONE$/i.test(health[health.length - 1]!.args.trim())) {
    findings.push({ rule: 'healthcheck', message: 'the runtime stage must declare a HEALTHCHECK', line: finalLine });
  } else if (!/\bCMD\b/.test(health[health.length - 1]!.args)) {
    findings.push({ rule: 'healthcheck', message: 'HEALTHCHECK has no CMD', line: health[0]!.line });
  }
  const copiesModules = final.instructions.filter(
    (i) => i.keyword === 'COPY' && /--from=(\S+)/.test(i.args) && /node_modules/.test(i.args),
  );
  for (const copy of copiesModules) {
    const from = /--from=(\S+)/.exec(copy.args)![1]!;
    const source = stages.find((s) => s.name === from);
    const installs =
      source?.instructions.filter((i) => i.keyword === 'RUN' && /\bnpm (ci|install)\b/.test(i.args)) ?? [];
    if (installs.length === 0 || !installs.every((i) => /--omit=dev\b/.test(i.args))) {
      findings.push({
        rule: 'production-deps',
        message: `node_modules come from stage ${from}, which does not install with --omit=dev`,
        line: copy.line,
      });
    }
  }
  return findings;
}
