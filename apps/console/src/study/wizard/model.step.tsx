import { useFormContext, useWatch } from 'react-hook-form';
import {
  describeTask,
  inferNetworkShapes,
  logisticRegressionNetwork,
  mlpNetwork,
  NetworkSpecError,
  smallCnnNetwork,
  smallResidualCnnNetwork,
  taskMetricNames,
  type NetworkShapeTable,
  type NetworkSpec,
  type NetworkTask,
} from '@tessera/protocol';
import { networkOfText, type PlanDraft } from '../../lib/plan-draft.js';
import { Field, TextField } from './wizard-fields.js';
import { useWizard } from './wizard-context.js';
import type { WizardStep } from './wizard-step.js';

/** Model inputs the draft's schema encodes to: 1 per numeric column, levels − 1 per categorical one. */
function encodedFeatures(d: PlanDraft): number {
  return d.schema.features.reduce(
    (n, f) => n + (f.type === 'numeric' ? 1 : Math.max(0, f.levels.split(',').filter((l) => l.trim()).length - 1)),
    0,
  );
}

/** The task the draft's label defines (the network's task must match it). */
function taskOf(d: PlanDraft): NetworkTask {
  const op = d.schema.label.operator;
  if (op === 'class')
    return {
      kind: 'multiclass',
      classes: Math.max(2, d.schema.label.values.split(',').filter((v) => v.trim()).length),
    };
  if (op === 'value') return { kind: 'regression', loss: 'mse' };
  return { kind: 'binary' };
}

/** The presets a designer starts from; each fills in a plain spec that the plan carries (never a preset's name). */
function presets(d: PlanDraft): { name: string; spec: NetworkSpec }[] {
  const task = taskOf(d);
  const features = encodedFeatures(d);
  const image = d.imageSchema
    ? { height: 28, width: 28, channels: d.imageSchema.image.color === 'rgb' ? (3 as const) : (1 as const) }
    : { height: 28, width: 28, channels: 1 as const };
  return [
    ...(task.kind === 'binary' ? [{ name: 'Logistic regression', spec: logisticRegressionNetwork(features) }] : []),
    { name: 'MLP', spec: mlpNetwork({ features, hiddenLayers: [32, 16], activation: 'relu', task }) },
    { name: 'Small CNN (images)', spec: smallCnnNetwork({ ...image, task }) },
    { name: 'Small residual CNN (images)', spec: smallResidualCnnNetwork({ ...image, task }) },
  ];
}

const shape = (s: readonly number[]) => `[${s.join(', ')}]`;

/** The layer table of the spec as typed, or the checker's refusal naming the layer and field. */
function NetworkSummary({ text }: { text: string }) {
  const value = networkOfText(text);
  let table: NetworkShapeTable;
  try {
    table = inferNetworkShapes(value);
  } catch (err) {
    if (!(err instanceof NetworkSpecError)) throw err;
    return (
      <p className="notice notice-error" role="alert">
        {err.message}
      </p>
    );
  }
  const spec = value as NetworkSpec;
  return (
    <div>
      <p>
        {spec.input.kind === 'image'
          ? `Images ${spec.input.height}×${spec.input.width}, ${spec.input.channels === 1 ? 'grey' : 'RGB'}`
          : `Tabular records, ${spec.input.features} values`}
        ; {describeTask(spec.task)}; {table.parameters.toLocaleString('en-US')} parameters. Metrics at each silo:{' '}
        {taskMetricNames(spec.task.kind).join(', ')}.
      </p>
      <table className="table" aria-label="Layers">
        <thead>
          <tr>
            <th>Layer</th>
            <th>Kind</th>
            <th>Inputs</th>
            <th>Output</th>
            <th>Parameters</th>
          </tr>
        </thead>
        <tbody>
          <tr>
            <td>input</td>
            <td>input</td>
            <td />
            <td>{shape(table.inputShape)}</td>
            <td>0</td>
          </tr>
          {table.rows.map((r) => (
            <tr key={r.id}>
              <td>{r.id}</td>
              <td>{r.kind}</td>
              <td>{r.inputs.join(', ')}</td>
              <td>{shape(r.outputShape)}</td>
              <td>{r.parameters.toLocaleString('en-US')}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function NetworkFields() {
  const { draft, touch } = useWizard();
  const { setValue, control } = useFormContext<PlanDraft>();
  const text = useWatch({ control, name: 'model.network' }) ?? '';
  return (
    <>
      <div className="row">
        {presets(draft).map((p) => (
          <button
            key={p.name}
            type="button"
            className="button button-secondary button-small"
            onClick={() => {
              setValue('model.network', JSON.stringify(p.spec, null, 2));
              touch('model.network');
            }}
          >
            {p.name}
          </button>
        ))}
      </div>
      <TextField
        path="model.network"
        name="model.network"
        label="Network spec (tessera.network/1, JSON)"
        hint="Start from a preset or paste a spec: the layers, the input and the task (docs/models.md). Stewards approve these bytes."
        rows={14}
      />
      <NetworkSummary text={text} />
    </>
  );
}

function ModelFields() {
  const { draft } = useWizard();
  return (
    <>
      <Field path="model.kind" name="model.kind" label="Architecture">
        {(p) => (
          <select {...p}>
            <option value="logistic-regression">Logistic regression</option>
            <option value="mlp">Multi-layer perceptron (MLP)</option>
            <option value="network">Declarative network (preset or pasted spec)</option>
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
      ) : draft.model.kind === 'network' ? (
        <NetworkFields />
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
  fieldPaths: (d) => [
    'model.kind',
    ...(d.model.kind === 'mlp' ? ['model.hiddenLayers', 'model.activation'] : []),
    ...(d.model.kind === 'network' ? ['model.network'] : []),
  ],
  Component: ModelFields,
};
