import { Field, TextField } from './wizard-fields.js';
import { useWizard } from './wizard-context.js';
import type { WizardStep } from './wizard-step.js';

function ModelFields() {
  const { draft } = useWizard();
  return (
    <>
      <Field path="model.kind" name="model.kind" label="Architecture">
        {(p) => (
          <select {...p}>
            <option value="logistic-regression">Logistic regression</option>
            <option value="mlp">Multi-layer perceptron (MLP)</option>
          </select>
        )}
      </Field>
      {draft.model.kind === 'mlp' ? (
        <div className="grid-2">
          <TextField
            path="model.hiddenLayers"
            name="model.hiddenLayers"
            label="Hidden layers"
            hint="Units per layer, comma-separated (1–8 layers)."
          />
          <Field path="model.activation" name="model.activation" label="Activation">
            {(p) => (
              <select {...p}>
                <option value="relu">ReLU</option>
                <option value="tanh">tanh</option>
              </select>
            )}
          </Field>
        </div>
      ) : (
        <p className="hint">One weight per encoded feature plus a bias; binary outcome (sigmoid).</p>
      )}
    </>
  );
}

export const modelStep: WizardStep = {
  id: 'model',
  title: 'Model',
  owns: ['model'],
  fieldPaths: (d) => ['model.kind', ...(d.model.kind === 'mlp' ? ['model.hiddenLayers', 'model.activation'] : [])],
  Component: ModelFields,
};
