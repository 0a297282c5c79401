import { denseLayers, type ModelSpec } from './model-spec';
import { assertParameters, parameterLayout } from './parameter-layout';

/** A weight entry of a tfjs weights manifest. */
export interface TfjsWeightSpec {
  readonly name: string;
  readonly shape: number[];
  readonly dtype: 'float32';
}

/** The model.json of a tfjs layers model (tfjs-layers "layers-model" format, Keras Sequential topology). */
export interface TfjsModelJson {
  readonly format: 'layers-model';
  readonly generatedBy: string;
  readonly convertedBy: null;
  readonly modelTopology: {
    readonly class_name: 'Sequential';
    readonly config: { readonly name: string; readonly layers: unknown[] };
    readonly keras_version: string;
    readonly backend: string;
  };
  readonly weightsManifest: { readonly paths: string[]; readonly weights: TfjsWeightSpec[] }[];
}

export interface TfjsExport {
  readonly modelJson: TfjsModelJson;
  /** Contents of the single shard 'weights.bin': float32 little-endian, manifest order. */
  readonly weightsBin: Uint8Array;
}

/**
 * Exports the model in the TensorFlow.js layers-model format (model.json + weights.bin, see tfjs-layers
 * `LayersModel.save` and tfjs-core `io.ModelArtifacts`): a Sequential of Dense layers with Keras configs, so
 * `tf.loadLayersModel` (from files or an in-memory IOHandler) rebuilds it. Output deterministic bytes.
 */
export function exportTfjs(spec: ModelSpec, parameters: Float32Array): TfjsExport {
  assertParameters(spec, parameters);
  const layers = denseLayers(spec).map((layer, l) => ({
    class_name: 'Dense',
    config: {
      name: `dense_${l + 1}`,
      trainable: true,
      dtype: 'float32',
      ...(l === 0 ? { batch_input_shape: [null, layer.inputs] } : {}),
      units: layer.units,
      activation: layer.activation,
      use_bias: true,
      kernel_initializer: { class_name: 'GlorotUniform', config: { seed: null } },
      bias_initializer: { class_name: 'Zeros', config: {} },
      kernel_regularizer: null,
      bias_regularizer: null,
      activity_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
    },
  }));
  const layout = parameterLayout(spec);
  const weightsBin = new Uint8Array(layout.size * 4);
  const view = new DataView(weightsBin.buffer);
  parameters.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return {
    modelJson: {
      format: 'layers-model',
      generatedBy: '@tessera/ml',
      convertedBy: null,
      modelTopology: {
        class_name: 'Sequential',
        config: { name: spec.kind, layers },
        keras_version: 'tfjs-layers 4.22.0',
        backend: 'tensor_flow.js',
      },
      weightsManifest: [
        {
          paths: ['weights.bin'],
          weights: layout.entries.map((e) => ({ name: e.name, shape: [...e.shape], dtype: 'float32' as const })),
        },
      ],
    },
    weightsBin,
  };
}
