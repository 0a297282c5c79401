import { onnx } from 'onnx-proto';
import { denseLayers, type ModelSpec } from './model-spec';
import { assertParameters, parameterLayout } from './parameter-layout';

/** Opset 13: Softmax's axis defaults to -1 (per row), the semantics we want for [N, k] logits. */
const OPSET = 13;
/** IR version 7 is the one that introduced opset 13 support (onnx/docs/Versioning.md). */
const IR_VERSION = 7;

function valueInfo(name: string, dims: (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** Float32 initializer with little-endian raw data, as the ONNX spec requires for raw_data. */
function initializer(name: string, dims: readonly number[], values: Float32Array): onnx.ITensorProto {
  const raw = new Uint8Array(values.length * 4);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return { name, dims: [...dims], dataType: onnx.TensorProto.DataType.FLOAT, rawData: raw };
}

/**
 * Serialises the model as an ONNX ModelProto (onnx.proto3, ONNX IR v7, default-domain opset 13): per dense layer a
 * MatMul and an Add, then Relu/Tanh for hidden layers and Sigmoid (binary) or Softmax (multi-class) at the output.
 * Input 'features' float32 [N, d]; output 'probability' float32 [N, k] (k = 1 for binary: P(y = 1)).
 */
export function exportOnnx(spec: ModelSpec, parameters: Float32Array): Uint8Array {
  assertParameters(spec, parameters);
  const layers = denseLayers(spec);
  const entries = parameterLayout(spec).entries;
  const nodes: onnx.INodeProto[] = [];
  const initializers: onnx.ITensorProto[] = [];
  let current = 'features';
  layers.forEach((layer, l) => {
    const kernel = entries[2 * l]!;
    const bias = entries[2 * l + 1]!;
    initializers.push(
      initializer(kernel.name, kernel.shape, parameters.subarray(kernel.offset, kernel.offset + kernel.length)),
      initializer(bias.name, bias.shape, parameters.subarray(bias.offset, bias.offset + bias.length)),
    );
    const prefix = `dense_${l + 1}`;
    nodes.push({ opType: 'MatMul', name: `${prefix}/MatMul`, input: [current, kernel.name], output: [`${prefix}/xw`] });
    nodes.push({ opType: 'Add', name: `${prefix}/Add`, input: [`${prefix}/xw`, bias.name], output: [`${prefix}/z`] });
    const last = l === layers.length - 1;
    const output = last ? 'probability' : `${prefix}/a`;
    const opType = { relu: 'Relu', tanh: 'Tanh', sigmoid: 'Sigmoid', softmax: 'Softmax' }[layer.activation];
    nodes.push({ opType, name: `${prefix}/${opType}`, input: [`${prefix}/z`], output: [output] });
    current = output;
  });
  const outputUnits = layers[layers.length - 1]!.units;
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: '@tessera/ml',
    producerVersion: '0.1.0',
    graph: {
      name: spec.kind,
      node: nodes,
      initializer: initializers,
      input: [valueInfo('features', ['N', spec.inputDim])],
      output: [valueInfo('probability', ['N', outputUnits])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
