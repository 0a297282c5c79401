// Places each problem studyPlanProblems reports ("path: message") at the wizard field it concerns, so the person
// sees it next to what they typed. Which fields exist, and in which step, the wizard's steps say
// (apps/console/src/study/wizard/wizard-steps.tsx).

/** Where problems without a better place go: the whole plan. */
export const PLAN_PATH = 'plan';

export interface PlacedProblem {
  /** The field that shows it. */
  field: string;
  /** The text shown there: the message in plain words, naming the item when the path points inside the field. */
  text: string;
  /** The problem as reported. */
  problem: string;
  /** The problem in plain words, naming the field by its path (for lists away from the field: the review). */
  plain: string;
  /** The validator's message, and the item inside the field it concerns ("Item 2"), null for the field itself. */
  message: string;
  item: string | null;
}

/** The text a field shows under its label: the problem naming the field by that label (and the item, if any). */
export function problemTextAt(p: PlacedProblem, label: string): string {
  if (p.field === PLAN_PATH) return p.text;
  return plainProblem(p.item ? `${label}, ${p.item.charAt(0).toLowerCase()}${p.item.slice(1)},` : label, p.message);
}

/** Splits "schema.features.0.name: Too small: …" into its path and message (paths never contain ": "). */
export function splitProblem(problem: string): { path: string; message: string } {
  const i = problem.indexOf(': ');
  return i === -1
    ? { path: PLAN_PATH, message: problem }
    : { path: problem.slice(0, i), message: problem.slice(i + 2) };
}

/**
 * The field each problem belongs to: the field of the same path; else the deepest field containing the path (an
 * item of a list field); else the first field inside the path (a union such as `privacy` shows at its mode);
 * else the whole plan.
 */
export function placeProblems(problems: readonly string[], fields: readonly string[]): PlacedProblem[] {
  return problems.map((problem) => {
    const { path, message } = splitProblem(problem);
    const plain = path === PLAN_PATH ? message : plainProblem(subjectOfPath(path), message);
    if (fields.includes(path)) {
      return { field: path, text: plainProblem('This field', message), problem, plain, message, item: null };
    }
    const containing = fields.filter((f) => path.startsWith(`${f}.`)).sort((a, b) => b.length - a.length)[0];
    if (containing) {
      const inner = path.slice(containing.length + 1);
      const item = subjectOfItem(inner);
      return { field: containing, text: plainProblem(item, message), problem, plain, message, item };
    }
    const inside = fields.find((f) => f.startsWith(`${path}.`));
    if (inside) {
      return { field: inside, text: plainProblem('This field', message), problem, plain, message, item: null };
    }
    return { field: PLAN_PATH, text: plain, problem, plain, message, item: null };
  });
}

/** "training.localEpochs" → "Training local epochs"; list indices count from 1 ("hiddenLayers.0" → "hidden layers 1"). */
export function subjectOfPath(path: string): string {
  const words = path
    .split('.')
    .map((seg) =>
      /^\d+$/.test(seg) ? String(Number(seg) + 1) : seg.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase(),
    )
    .join(' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** A path inside a list field: "1" → "Item 2", "1.name" → "Item 2 name". */
function subjectOfItem(inner: string): string {
  const [first, ...rest] = inner.split('.');
  if (first !== undefined && /^\d+$/.test(first)) {
    const tail = rest.length ? ` ${subjectOfPath(rest.join('.')).toLowerCase()}` : '';
    return `Item ${Number(first) + 1}${tail}`;
  }
  return subjectOfPath(inner);
}

const PLAIN_RULES: { pattern: RegExp; say: (subject: string, m: RegExpExecArray) => string }[] = [
  { pattern: /^Invalid input: expected number, received (NaN|string)/, say: (s) => `${s} must be a number.` },
  { pattern: /^Invalid input: expected int, received number/, say: (s) => `${s} must be a whole number.` },
  { pattern: /^Invalid input: expected \w+, received (undefined|null)/, say: (s) => `${s} is required.` },
  { pattern: /^Too small: expected number to be >=(\S+)/, say: (s, m) => `${s} must be at least ${m[1]}.` },
  { pattern: /^Too small: expected number to be >(\S+)/, say: (s, m) => `${s} must be greater than ${m[1]}.` },
  { pattern: /^Too big: expected number to be <=(\S+)/, say: (s, m) => `${s} must be at most ${m[1]}.` },
  { pattern: /^Too big: expected number to be <(\S+)/, say: (s, m) => `${s} must be less than ${m[1]}.` },
  {
    pattern: /^Too small: expected string to have >=(\d+) characters?/,
    say: (s, m) => (m[1] === '1' ? `${s} is required.` : `${s} needs at least ${m[1]} characters.`),
  },
  {
    pattern: /^Too big: expected string to have <=(\d+) characters?/,
    say: (s, m) => `${s} allows at most ${m[1]} characters.`,
  },
  {
    pattern: /^Too small: expected array to have >=(\d+) items?/,
    say: (s, m) => `${s} needs at least ${m[1]} ${m[1] === '1' ? 'entry' : 'entries'}.`,
  },
  { pattern: /^Too big: expected array to have <=(\d+) items?/, say: (s, m) => `${s} allows at most ${m[1]} entries.` },
  {
    pattern: /^Invalid option: expected one of (.+)$/,
    say: (s, m) => `${s} must be one of: ${(m[1] ?? '').replace(/"/g, '').split('|').join(', ')}.`,
  },
  { pattern: /^Invalid string: must match pattern/, say: (s) => `${s} has characters or a form it does not allow.` },
  { pattern: /^Invalid input$/, say: (s) => `${s} is not valid.` },
];

/**
 * A problem in plain words (issue 19: "errors are raw validator text"): the shared schema's zod messages become a
 * sentence naming the field ("Target ε must be a number." for "Invalid input: expected number, received NaN").
 * Messages of the plan's own rules (cross-field checks, the hub's refusals) are already sentences: they keep their words,
 * after the field's name.
 */
export function plainProblem(subject: string, message: string): string {
  for (const rule of PLAIN_RULES) {
    const m = rule.pattern.exec(message);
    if (m) return rule.say(subject, m);
  }
  return `${subject}: ${message}`;
}
