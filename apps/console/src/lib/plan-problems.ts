// Places each problem studyPlanProblems reports ("path: message") at the wizard field it concerns, so the person
// sees it next to what they typed. Which fields exist, and in which step, the wizard's steps say
// (apps/console/src/study/wizard/wizard-steps.tsx).

/** Where problems without a better place go: the whole plan. */
export const PLAN_PATH = 'plan';

export interface PlacedProblem {
  /** The field that shows it. */
  field: string;
  /** The text shown there: the message, prefixed with the rest of the path when it points inside the field. */
  text: string;
  /** The problem as reported. */
  problem: string;
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
    if (fields.includes(path)) return { field: path, text: message, problem };
    const containing = fields.filter((f) => path.startsWith(`${f}.`)).sort((a, b) => b.length - a.length)[0];
    if (containing) return { field: containing, text: `${path.slice(containing.length + 1)}: ${message}`, problem };
    const inside = fields.find((f) => f.startsWith(`${path}.`));
    if (inside) return { field: inside, text: message, problem };
    return { field: PLAN_PATH, text: path === PLAN_PATH ? message : `${path}: ${message}`, problem };
  });
}
