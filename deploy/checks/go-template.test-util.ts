import { stringify as toYamlText } from 'yaml';

/**
 * A minimal renderer for the subset of Go text/template + Helm functions that deploy/helm/tessera uses, so the
 * chart can be rendered and its manifests schema-checked where `helm` is not installable (no Debian package, no
 * npm package without a binary download). It is NOT Helm: the chart's templates are kept to this subset on purpose,
 * and an unsupported construct throws instead of rendering something plausible.
 *
 * Supported: text with {{ }} actions and {{- -}} whitespace trimming; comments ({{/* ... *\/}}); fields .a.b, $.a, $var,
 * $var.a, .; string/number/bool literals; parenthesised pipelines; pipelines with |; if / else if / else, range
 * (over lists and maps, with `$v :=` or `$k, $v :=`), with, define, end; variables `$x := pipeline` in the current
 * scope. Functions: include, required, default, quote, squote, toYaml, toJson, nindent, indent, eq, ne, not, and, or, empty,
 * b64enc, printf (%s %d %v only), trunc, trimSuffix, hasPrefix, lower, toString, int, list, has, hasKey, index (of a
 * map or list), fail, gt, ge, lt, le (numbers only, as Go's comparison of two ints), len.
 */

type Value = unknown;

interface TextNode {
  type: 'text';
  text: string;
}
interface ActionNode {
  type: 'action';
  pipe: Pipeline;
  declare?: string;
}
interface IfNode {
  type: 'if';
  branches: { cond: Pipeline; body: Node[] }[];
  otherwise: Node[];
}
interface RangeNode {
  type: 'range';
  keyVar?: string;
  valueVar?: string;
  pipe: Pipeline;
  body: Node[];
  otherwise: Node[];
}
interface WithNode {
  type: 'with';
  pipe: Pipeline;
  body: Node[];
  otherwise: Node[];
}
type Node = TextNode | ActionNode | IfNode | RangeNode | WithNode;

type Term =
  | { kind: 'field'; base: string; path: string[] } // base: '.', '$', or '$name'
  | { kind: 'literal'; value: Value }
  | { kind: 'ident'; name: string }
  | { kind: 'group'; pipe: Pipeline };
type Command = Term[];
type Pipeline = Command[];

/** One {{ }} action or a run of text, with trimming already applied. */
type Token = { kind: 'text'; text: string } | { kind: 'action'; body: string };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let trimNextText = false;
  while (i < source.length) {
    const open = source.indexOf('{{', i);
    let text = open < 0 ? source.slice(i) : source.slice(i, open);
    if (trimNextText) text = text.replace(/^\s+/, '');
    if (open < 0) {
      if (text) tokens.push({ kind: 'text', text });
      break;
    }
    let bodyStart = open + 2;
    if (source[bodyStart] === '-' && /\s/.test(source[bodyStart + 1] ?? '')) {
      text = text.replace(/\s+$/, '');
      bodyStart += 1;
    }
    if (text) tokens.push({ kind: 'text', text });
    const close = source.indexOf('}}', bodyStart);
    if (close < 0) throw new Error('unclosed {{');
    let body = source.slice(bodyStart, close);
    trimNextText = false;
    if (/\s-$/.test(body)) {
      body = body.slice(0, -1);
      trimNextText = true;
    }
    body = body.trim();
    if (!(body.startsWith('/*') && body.endsWith('*/'))) tokens.push({ kind: 'action', body });
    i = close + 2;
  }
  return tokens;
}

/** Lexes an action body into words, keeping string literals and parentheses whole. */
function lexAction(body: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < body.length) {
    const c = body[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < body.length && body[j] !== '"') j += body[j] === '\\' ? 2 : 1;
      words.push(body.slice(i, j + 1));
      i = j + 1;
    } else if (c === '`') {
      const j = body.indexOf('`', i + 1);
      words.push(body.slice(i, j + 1));
      i = j + 1;
    } else if (c === '(' || c === ')' || c === '|' || c === ',') {
      words.push(c);
      i++;
    } else {
      let j = i;
      while (j < body.length && !/[\s()|,]/.test(body[j]!)) j++;
      words.push(body.slice(i, j));
      i = j;
    }
  }
  return words;
}

function parsePipeline(words: string[]): Pipeline {
  let pos = 0;
  const pipeline = (): Pipeline => {
    const cmds: Pipeline = [];
    let cmd: Command = [];
    while (pos < words.length && words[pos] !== ')') {
      const w = words[pos++]!;
      if (w === '|') {
        cmds.push(cmd);
        cmd = [];
      } else if (w === '(') {
        const inner = pipeline();
        if (words[pos++] !== ')') throw new Error('missing )');
        cmd.push({ kind: 'group', pipe: inner });
      } else {
        cmd.push(term(w));
      }
    }
    cmds.push(cmd);
    if (cmds.some((c) => c.length === 0)) throw new Error(`empty command in "${words.join(' ')}"`);
    return cmds;
  };
  const result = pipeline();
  if (pos !== words.length) throw new Error(`unexpected ) in "${words.join(' ')}"`);
  return result;
}

function term(w: string): Term {
  if (w.startsWith('"')) return { kind: 'literal', value: JSON.parse(w) as string };
  if (w.startsWith('`')) return { kind: 'literal', value: w.slice(1, -1) };
  if (/^-?\d+(\.\d+)?$/.test(w)) return { kind: 'literal', value: Number(w) };
  if (w === 'true' || w === 'false') return { kind: 'literal', value: w === 'true' };
  if (w === 'nil') return { kind: 'literal', value: null };
  if (w === '.') return { kind: 'field', base: '.', path: [] };
  if (w.startsWith('.')) return { kind: 'field', base: '.', path: w.slice(1).split('.') };
  if (w.startsWith('$')) {
    const [base, ...path] = w.split('.');
    return { kind: 'field', base: base!, path };
  }
  if (/^[A-Za-z][A-Za-z0-9]*$/.test(w)) return { kind: 'ident', name: w };
  throw new Error(`unsupported term ${w}`);
}

function parse(tokens: Token[], defines: Map<string, Node[]>): Node[] {
  let pos = 0;
  // Parses nodes until one of the stop keywords; returns the nodes and the stopping action.
  const block = (stops: string[]): { nodes: Node[]; stop: string | undefined } => {
    const nodes: Node[] = [];
    while (pos < tokens.length) {
      const t = tokens[pos++]!;
      if (t.kind === 'text') {
        nodes.push({ type: 'text', text: t.text });
        continue;
      }
      const words = lexAction(t.body);
      const head = words[0];
      if (head !== undefined && stops.some((s) => t.body === s || t.body.startsWith(s + ' '))) {
        return { nodes, stop: t.body };
      }
      if (head === 'if') {
        const branches: IfNode['branches'] = [];
        let cond = parsePipeline(words.slice(1));
        let otherwise: Node[] = [];
        for (;;) {
          const part = block(['else if', 'else', 'end']);
          branches.push({ cond, body: part.nodes });
          if (part.stop === undefined) throw new Error('if without end');
          if (part.stop.startsWith('else if')) {
            cond = parsePipeline(lexAction(part.stop).slice(2));
            continue;
          }
          if (part.stop === 'else') {
            const last = block(['end']);
            if (last.stop === undefined) throw new Error('if without end');
            otherwise = last.nodes;
          }
          break;
        }
        nodes.push({ type: 'if', branches, otherwise });
      } else if (head === 'range' || head === 'with') {
        let rest = words.slice(1);
        let keyVar: string | undefined;
        let valueVar: string | undefined;
        const decl = rest.indexOf(':=');
        if (decl >= 0) {
          const vars = rest.slice(0, decl).filter((w) => w !== ',');
          if (vars.length === 2) [keyVar, valueVar] = vars;
          else valueVar = vars[0];
          rest = rest.slice(decl + 1);
        }
        const body = block(['else', 'end']);
        let otherwise: Node[] = [];
        if (body.stop === 'else') otherwise = block(['end']).nodes;
        else if (body.stop === undefined) throw new Error(`${head} without end`);
        const pipe = parsePipeline(rest);
        nodes.push(
          head === 'range'
            ? {
                type: 'range',
                pipe,
                body: body.nodes,
                otherwise,
                ...(keyVar ? { keyVar } : {}),
                ...(valueVar ? { valueVar } : {}),
              }
            : { type: 'with', pipe, body: body.nodes, otherwise },
        );
      } else if (head === 'define') {
        const name = JSON.parse(words[1]!) as string;
        const body = block(['end']);
        defines.set(name, body.nodes);
      } else if (head === 'end' || head === 'else') {
        throw new Error(`unexpected {{ ${t.body} }}`);
      } else if (head?.startsWith('$') && words[1] === ':=') {
        nodes.push({ type: 'action', declare: head, pipe: parsePipeline(words.slice(2)) });
      } else {
        nodes.push({ type: 'action', pipe: parsePipeline(words) });
      }
    }
    return { nodes, stop: undefined };
  };
  const top = block([]);
  return top.nodes;
}

function truthy(v: Value): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

function field(v: Value, path: string[]): Value {
  let cur = v;
  for (const p of path) {
    if (cur === null || cur === undefined) return undefined;
    cur = (cur as Record<string, Value>)[p];
  }
  return cur;
}

function stringOf(v: Value): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function indentLines(n: number, text: string): string {
  const pad = ' '.repeat(n);
  return text
    .split('\n')
    .map((l) => pad + l)
    .join('\n');
}

interface Scope {
  dot: Value;
  root: Value;
  vars: Map<string, Value>;
}

/** Renders Helm templates: `files` maps names to sources; `_*.tpl` files contribute only their defines. */
export class ChartRenderer {
  private readonly defines = new Map<string, Node[]>();
  private readonly parsed = new Map<string, Node[]>();

  constructor(files: Record<string, string>) {
    for (const [name, source] of Object.entries(files)) {
      this.parsed.set(name, parse(tokenize(source), this.defines));
    }
  }

  render(name: string, root: Value): string {
    const nodes = this.parsed.get(name);
    if (!nodes) throw new Error(`no template ${name}`);
    return this.nodes(nodes, { dot: root, root, vars: new Map([['$', root]]) });
  }

  private nodes(nodes: Node[], scope: Scope): string {
    let out = '';
    for (const n of nodes) out += this.node(n, scope);
    return out;
  }

  private node(n: Node, scope: Scope): string {
    switch (n.type) {
      case 'text':
        return n.text;
      case 'action': {
        const v = this.pipe(n.pipe, scope);
        if (n.declare) {
          scope.vars.set(n.declare, v);
          return '';
        }
        return stringOf(v);
      }
      case 'if': {
        for (const b of n.branches) if (truthy(this.pipe(b.cond, scope))) return this.nodes(b.body, scope);
        return this.nodes(n.otherwise, scope);
      }
      case 'with': {
        const v = this.pipe(n.pipe, scope);
        return truthy(v) ? this.nodes(n.body, { ...scope, dot: v }) : this.nodes(n.otherwise, scope);
      }
      case 'range': {
        const v = this.pipe(n.pipe, scope);
        if (!truthy(v)) return this.nodes(n.otherwise, scope);
        const entries: [Value, Value][] = Array.isArray(v)
          ? v.map((x, i) => [i, x])
          : Object.keys(v as object)
              .sort()
              .map((k) => [k, (v as Record<string, Value>)[k]]);
        let out = '';
        for (const [k, x] of entries) {
          const vars = new Map(scope.vars);
          if (n.keyVar) vars.set(n.keyVar, k);
          if (n.valueVar) vars.set(n.valueVar, x);
          out += this.nodes(n.body, { ...scope, dot: x, vars });
        }
        return out;
      }
    }
  }

  private pipe(p: Pipeline, scope: Scope): Value {
    let carried: { value: Value } | undefined;
    for (const cmd of p) {
      const value = this.command(cmd, scope, carried);
      carried = { value };
    }
    return carried?.value;
  }

  private termValue(t: Term, scope: Scope): Value {
    switch (t.kind) {
      case 'literal':
        return t.value;
      case 'group':
        return this.pipe(t.pipe, scope);
      case 'ident':
        return this.call(t.name, [], scope);
      case 'field': {
        const base = t.base === '.' ? scope.dot : scope.vars.get(t.base);
        if (t.base !== '.' && !scope.vars.has(t.base)) throw new Error(`undefined variable ${t.base}`);
        return field(base, t.path);
      }
    }
  }

  private command(cmd: Command, scope: Scope, carried: { value: Value } | undefined): Value {
    const [head, ...rest] = cmd;
    if (head!.kind === 'ident') {
      const args = rest.map((t) => this.termValue(t, scope));
      if (carried) args.push(carried.value);
      return this.call(head!.name, args, scope);
    }
    if (rest.length > 0 || carried) throw new Error('only functions take arguments');
    return this.termValue(head!, scope);
  }

  private call(name: string, args: Value[], scope: Scope): Value {
    const str = (i: number) => stringOf(args[i]);
    switch (name) {
      case 'include': {
        const body = this.defines.get(str(0));
        if (!body) throw new Error(`include of undefined template ${str(0)}`);
        return this.nodes(body, { dot: args[1], root: scope.root, vars: new Map([['$', args[1]]]) });
      }
      case 'required':
        if (!truthy(args[1]) && args[1] !== false && args[1] !== 0) throw new Error(str(0));
        return args[1];
      case 'default':
        return truthy(args[1]) ? args[1] : args[0];
      case 'quote':
        return JSON.stringify(str(0));
      case 'squote':
        return `'${str(0)}'`;
      case 'toYaml':
        return args[0] === undefined || args[0] === null ? 'null' : toYamlText(args[0]).replace(/\n$/, '');
      case 'toJson':
        return JSON.stringify(args[0] ?? null);
      case 'nindent':
        return '\n' + indentLines(Number(args[0]), str(1));
      case 'indent':
        return indentLines(Number(args[0]), str(1));
      case 'eq':
        return args.slice(1).some((a) => a === args[0]);
      case 'ne':
        return args[0] !== args[1];
      case 'not':
        return !truthy(args[0]);
      case 'and':
        return args.reduce((acc: Value, a) => (truthy(acc) ? a : acc), true);
      case 'or':
        return args.find((a) => truthy(a)) ?? args[args.length - 1];
      case 'empty':
        return !truthy(args[0]);
      case 'b64enc':
        return Buffer.from(str(0), 'utf8').toString('base64');
      case 'printf': {
        let i = 1;
        return str(0).replace(/%[sdv]/g, () => stringOf(args[i++]));
      }
      case 'trunc':
        return str(1).slice(0, Number(args[0]));
      case 'trimSuffix':
        return str(1).endsWith(str(0)) ? str(1).slice(0, -str(0).length) : str(1);
      case 'hasPrefix':
        return str(1).startsWith(str(0));
      case 'index': {
        // Go's index: a missing map key gives the zero value; a list index out of range is an error.
        const [container, key] = args;
        if (Array.isArray(container)) {
          const i = Number(key);
          if (!Number.isInteger(i) || i < 0 || i >= container.length)
            throw new Error(`index ${stringOf(key)} out of range`);
          return container[i] as Value;
        }
        if (typeof container === 'object' && container !== null) return (container as Record<string, Value>)[str(1)];
        if (container === null || container === undefined) return undefined;
        throw new Error(`cannot index ${typeof container}`);
      }
      case 'lower':
        return str(0).toLowerCase();
      case 'toString':
        return str(0);
      case 'int':
        return Math.trunc(Number(args[0]));
      case 'list':
        return args;
      case 'has':
        return Array.isArray(args[1]) && args[1].includes(args[0]);
      case 'hasKey':
        return typeof args[0] === 'object' && args[0] !== null && str(1) in (args[0] as object);
      case 'fail':
        // Helm's `fail`: the whole rendering stops with this message.
        throw new Error(str(0));
      case 'gt':
      case 'ge':
      case 'lt':
      case 'le': {
        const [a, b] = args;
        // Go refuses to compare values of different kinds; a string here is a chart bug, not a comparison.
        if (typeof a !== 'number' || typeof b !== 'number') {
          throw new Error(`${name} compares numbers, got ${typeof a} and ${typeof b}`);
        }
        return name === 'gt' ? a > b : name === 'ge' ? a >= b : name === 'lt' ? a < b : a <= b;
      }
      case 'len': {
        const v = args[0];
        if (typeof v === 'string' || Array.isArray(v)) return v.length;
        if (typeof v === 'object' && v !== null) return Object.keys(v).length;
        throw new Error(`len of ${typeof v}`);
      }
      default:
        throw new Error(`unsupported function ${name}`);
    }
  }
}

/** Renders every template of a chart (not `_*.tpl`, not NOTES.txt) into named outputs. */
export function renderChart(
  templates: Record<string, string>,
  values: Value,
  meta: { release: string; namespace: string; chart: Record<string, string> },
): Record<string, string> {
  const renderer = new ChartRenderer(templates);
  const root = {
    Values: values,
    Release: { Name: meta.release, Namespace: meta.namespace, Service: 'Helm', IsInstall: true, IsUpgrade: false },
    Chart: meta.chart,
    Capabilities: { KubeVersion: { Version: 'v1.30.0' } },
  };
  const out: Record<string, string> = {};
  for (const name of Object.keys(templates)) {
    if (name.split('/').pop()!.startsWith('_') || name.endsWith('NOTES.txt')) continue;
    out[name] = renderer.render(name, root);
  }
  return out;
}
