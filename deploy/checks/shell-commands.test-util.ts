/**
 * Reads shell commands out of the guides (fenced ```bash blocks) so tests can hold the guides to what the images
 * and the tests actually do. Handles line continuations, single and double quotes and `$(...)`; no other expansion.
 */

/** Every command in the markdown's bash/sh code blocks, continuation lines joined, comments dropped. */
export function commandsInMarkdown(markdown: string): string[] {
  const commands: string[] = [];
  for (const block of markdown.matchAll(/```(?:bash|sh|shell)\n([\s\S]*?)```/g)) {
    let pending = '';
    for (const raw of block[1]!.split('\n')) {
      const line = raw.replace(/^\s*\$\s/, '');
      if (pending === '' && /^\s*#/.test(line)) continue;
      if (/\\\s*$/.test(line)) {
        pending += line.replace(/\\\s*$/, ' ');
        continue;
      }
      const full = (pending + line).trim();
      pending = '';
      if (full !== '') commands.push(full);
    }
  }
  return commands;
}

/** Splits a command into words like a POSIX shell would (quotes removed, `$(...)` kept verbatim as one word). */
export function shellWords(command: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (c === "'") {
      const end = command.indexOf("'", i + 1);
      word += command.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      while (j < command.length && command[j] !== '"') {
        if (command[j] === '$' && command[j + 1] === '(') {
          const close = command.indexOf(')', j);
          word += command.slice(j, close + 1);
          j = close + 1;
          continue;
        }
        word += command[j];
        j++;
      }
      i = j;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else if (c === '#' && !inWord) {
      break;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

export interface DockerRun {
  env: Record<string, string>;
  /** -v/--volume source:target[:options]. */
  volumes: { source: string; target: string; readOnly: boolean }[];
  published: string[];
  options: string[];
  image: string;
  args: string[];
}

const VALUE_OPTIONS = new Set(['--name', '--restart', '--user', '-u', '--network', '--memory', '--cpus', '--env-file']);

/** Parses `docker run [options] image [args]` (the subset of options the guides use). */
export function parseDockerRun(command: string): DockerRun {
  const words = shellWords(command);
  if (words[0] !== 'docker' || words[1] !== 'run') throw new Error(`not a docker run command: ${command}`);
  const run: DockerRun = { env: {}, volumes: [], published: [], options: [], image: '', args: [] };
  let i = 2;
  for (; i < words.length; i++) {
    const w = words[i]!;
    if (!w.startsWith('-')) break;
    const [flag, inline] =
      w.includes('=') && w.startsWith('--')
        ? [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]
        : [w, undefined];
    const value = () => inline ?? words[++i]!;
    if (flag === '-e' || flag === '--env') {
      const v = value();
      const eq = v.indexOf('=');
      run.env[eq < 0 ? v : v.slice(0, eq)] = eq < 0 ? '' : v.slice(eq + 1);
    } else if (flag === '-v' || flag === '--volume') {
      const [source, target, opts] = value().split(':');
      run.volumes.push({ source: source!, target: target!, readOnly: (opts ?? '').split(',').includes('ro') });
    } else if (flag === '-p' || flag === '--publish') {
      run.published.push(value());
    } else if (VALUE_OPTIONS.has(flag)) {
      run.options.push(`${flag}=${value()}`);
    } else {
      run.options.push(w);
    }
  }
  run.image = words[i] ?? '';
  run.args = words.slice(i + 1);
  return run;
}
