import { ADAPTIVE_OPTIMIZERS, type PlanDraft } from '../../lib/plan-draft.js';
import { useWizard } from './wizard-context.js';
import { Field, NumberField } from './wizard-fields.js';
import type { WizardStep } from './wizard-step.js';

function TrainingFields() {
  const { draft } = useWizard();
  const t = draft.training;
  const o = t.serverOptimizer;
  return (
    <>
      <div className="grid-3">
        <NumberField path="training.rounds" name="training.rounds" label="Rounds" />
        <NumberField path="training.localEpochs" name="training.localEpochs" label="Local epochs per round" />
        <NumberField path="training.batchSize" name="training.batchSize" label="Batch size" />
        <NumberField path="training.learningRate" name="training.learningRate" label="Local learning rate" />
        <Field path="training.algorithm" name="training.algorithm" label="Local algorithm">
          {(p) => (
            <select {...p}>
              <option value="fedavg">FedAvg</option>
              <option value="fedprox">FedProx</option>
              <option value="scaffold">SCAFFOLD (control variates)</option>
            </select>
          )}
        </Field>
        {t.algorithm === 'fedprox' ? (
          <NumberField path="training.proximalMu" name="training.proximalMu" label="Proximal μ" />
        ) : null}
        <NumberField path="training.initSeed" name="training.initSeed" label="Initial model seed" />
      </div>
      <h3>Server optimizer</h3>
      <div className="grid-3">
        <Field path="training.serverOptimizer.kind" name="training.serverOptimizer.kind" label="Optimizer">
          {(p) => (
            <select {...p}>
              <option value="fedavg">FedAvg (plain average)</option>
              <option value="fedavgm">FedAvgM (momentum)</option>
              <option value="fedadam">FedAdam</option>
              <option value="fedyogi">FedYogi</option>
              <option value="fedadagrad">FedAdagrad</option>
            </select>
          )}
        </Field>
        <NumberField
          path="training.serverOptimizer.learningRate"
          name="training.serverOptimizer.learningRate"
          label="Server learning rate"
        />
        {o.kind === 'fedavgm' ? (
          <NumberField
            path="training.serverOptimizer.momentum"
            name="training.serverOptimizer.momentum"
            label="Momentum"
          />
        ) : null}
        {ADAPTIVE_OPTIMIZERS.includes(o.kind) ? (
          <>
            <NumberField path="training.serverOptimizer.beta1" name="training.serverOptimizer.beta1" label="β1" />
            <NumberField path="training.serverOptimizer.beta2" name="training.serverOptimizer.beta2" label="β2" />
            <NumberField
              path="training.serverOptimizer.tau"
              name="training.serverOptimizer.tau"
              label="τ (adaptivity)"
            />
          </>
        ) : null}
      </div>
    </>
  );
}

/** The plan paths of the training step's fields for this draft (the seed last, as the plan orders it). */
function trainingFieldPaths(d: PlanDraft): string[] {
  const paths = ['training.rounds', 'training.localEpochs', 'training.batchSize', 'training.learningRate'];
  paths.push('training.algorithm');
  if (d.training.algorithm === 'fedprox') paths.push('training.proximalMu');
  paths.push('training.serverOptimizer.kind', 'training.serverOptimizer.learningRate');
  if (d.training.serverOptimizer.kind === 'fedavgm') paths.push('training.serverOptimizer.momentum');
  if (ADAPTIVE_OPTIMIZERS.includes(d.training.serverOptimizer.kind)) {
    paths.push('training.serverOptimizer.beta1', 'training.serverOptimizer.beta2', 'training.serverOptimizer.tau');
  }
  paths.push('training.initSeed');
  return paths;
}

export const trainingStep: WizardStep = {
  id: 'training',
  title: 'Training',
  owns: ['training'],
  fieldPaths: trainingFieldPaths,
  Component: TrainingFields,
};
