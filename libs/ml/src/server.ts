// @tessera/ml/server: what a process that never trains needs from this library (the hub: the model's layout and
// seeded initial parameters, mapping the library's errors to answers, the SCAFFOLD server step, and the exporters of
// the registry's models), without loading TensorFlow.js. The package's main entry loads it.
export {
  ModelSpecErrorCode,
  ModelSpecException,
  TabularDataErrorCode,
  TabularDataException,
  TrainingInputErrorCode,
  TrainingInputException,
} from './ml.exception';
export { controlCorrection, scaffoldControlUpdate, serverControlStep, type ControlVariateUpdate } from './scaffold';
export { parseModelSpec, type ModelSpec } from './model-spec';
export { initialNetworkParameters } from './network-model';
export { initialParameters, parameterLayout, type ParameterEntry, type ParameterLayout } from './parameter-layout';
export { exportOnnx } from './onnx-export';
export { exportTfjs, type TfjsExport, type TfjsModelJson, type TfjsWeightSpec } from './tfjs-export';
