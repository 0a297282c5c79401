import { ADAPTIVE_OPTIMIZERS, type PlanDraft } from './plan-draft.js';

// Places each problem studyPlanProblems reports ("path: message") at the wizard field it concerns, so the person
// sees it next to what they typed.

export type WizardStepId = 'basics' | 'model' | 'data' | 'training' | 'privacy' | 'release' | 'participants' | 'review';

export interface WizardStep {
  id: WizardStepId;
  title: string;
}

export const WIZARD_STEPS: readonly WizardStep[] = [
  { id: 'basics', title: 'Study' },
  { id: 'model', title: 'Model' },
  { id: 'data', title: 'Data schema' },
  { id: 'training', title: 'Training' },
  { id: 'privacy', title: 'Privacy' },
  { id: 'release', title: 'Releases' },
  { id: 'participants', title: 'Participants' },
  { id: 'review', title: 'Review' },
];

/** Where problems without a better place go: the whole plan. */
export const PLAN_PATH = 'plan';

export function stepOfPath(path: string): WizardStepId {
  const head = path.split('.')[0];
  switch (head) {
    case 'model':
      return 'model';
    case 'schema':
      return 'data';
    case 'training':
      return 'training';
    case 'privacy':
      return 'privacy';
    case 'release':
      return 'release';
    case 'participation':
    case 'silos':
      return 'participants';
    default:
      return 'basics';
  }
}

/** Every field (and field group) the wizard shows for this draft, in display order. */
export function wizardFieldPaths(d: PlanDraft): string[] {
  const paths = ['name', 'purpose', 'model.kind'];
  if (d.model.kind === 'mlp') paths.push('model.hiddenLayers', 'model.activation');
  if (!d.schema.hasHeader) paths.push('schema.columns');
  paths.push('schema.missingValues', 'schema.missing', 'schema.features');
  const imputing = d.schema.missing === 'impute';
  d.schema.features.forEach((f, i) => {
    const base = `schema.features.${i}`;
    paths.push(`${base}.name`, `${base}.type`);
    if (f.type === 'categorical') paths.push(`${base}.levels`);
    else paths.push(`${base}.scaling.center`, `${base}.scaling.scale`);
    if (imputing) paths.push(`${base}.impute`);
  });
  paths.push('schema.label', 'schema.label.column', 'schema.label.operator');
  paths.push(d.schema.label.operator === 'in' ? 'schema.label.values' : 'schema.label.threshold');
  paths.push('schema.split.testFraction', 'schema.split.salt');
  paths.push('training.rounds', 'training.localEpochs', 'training.batchSize', 'training.learningRate');
  paths.push('training.algorithm');
  if (d.training.algorithm === 'fedprox') paths.push('training.proximalMu');
  paths.push('training.serverOptimizer.kind', 'training.serverOptimizer.learningRate');
  if (d.training.serverOptimizer.kind === 'fedavgm') paths.push('training.serverOptimizer.momentum');
  if (ADAPTIVE_OPTIMIZERS.includes(d.training.serverOptimizer.kind)) {
    paths.push('training.serverOptimizer.beta1', 'training.serverOptimizer.beta2', 'training.serverOptimizer.tau');
  }
  paths.push('training.initSeed', 'privacy.mode');
  if (d.privacy.mode !== 'none') {
    paths.push('privacy.targetEpsilon', 'privacy.delta', 'privacy.clipNorm', 'privacy.noiseMultiplier');
    if (d.privacy.mode === 'dp-sgd') paths.push('privacy.samplingRate');
  }
  paths.push('release.evaluation.mode');
  if (d.release.evaluation !== 'none') paths.push('release.evaluation.rounds');
  if (d.release.evaluation === 'noisy') paths.push('release.evaluation.scoreBins');
  paths.push('release.trainingExamples');
  paths.push('silos', 'participation.minSilosPerRound', 'participation.roundDeadlineSeconds');
  paths.push('participation.maxRoundRetries', 'participation.onSiloFailure');
  return paths;
}

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
