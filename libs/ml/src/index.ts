// @tessera/ml: public surface.
export { selectBackend, type BackendName } from './backend-selection';
export { evaluate, predict, rocAuc, scoreHistograms, type EvaluationMetrics, type ScoreHistograms } from './evaluation';
export {
  HEART_DISEASE_CENTERS,
  HEART_DISEASE_COLUMNS,
  HEART_DISEASE_SCHEMA,
  heartDiseaseDataDirectory,
  type HeartDiseaseCenter,
} from './heart-disease.schema';
export {
  conservativeClipNorm,
  trainLocal,
  type DpSgdConfig,
  type LatticeNoiseSource,
  type LocalTrainingInput,
  type LocalTrainingResult,
  type TrainingSchedule,
} from './local-training';
export {
  ModelSpecErrorCode,
  ModelSpecException,
  TabularDataErrorCode,
  TabularDataException,
  TrainingInputErrorCode,
  TrainingInputException,
} from './ml.exception';
export {
  MODEL_ARCHITECTURES,
  denseLayers,
  outputUnits,
  parseModelSpec,
  type DenseLayerShape,
  type HiddenActivation,
  type LogisticRegressionSpec,
  type MlpSpec,
  type ModelArchitecture,
  type ModelSpec,
  type ModelTask,
} from './model-spec';
export {
  accuracy,
  balancedAccuracy,
  binaryMetrics,
  confusionMatrix,
  f1Score,
  macroOvrAuc,
  meanAbsoluteError,
  multiclassMetrics,
  predictedClasses,
  r2Score,
  regressionMetrics,
  rootMeanSquaredError,
  type ClassificationMetrics,
  type RegressionMetrics,
  type TaskMetrics,
} from './metrics';
export { checkNetworkExamples, type NetworkExamples } from './network-data';
export { evaluateNetwork, predictNetwork } from './network-evaluation';
export {
  checkFixedFeatures,
  fixedFeatures,
  fixedFrontOf,
  type FixedFront,
  type NetworkRows,
} from './network-fixed-features';
export { exportNetworkOnnx } from './network-onnx-export';
export { exportNetworkTfjs, type NetworkTfjsExport, type NetworkTfjsModelJson } from './network-tfjs-export';
export {
  compileNetwork,
  initialNetworkParameters,
  networkParameterLayout,
  networkSpecOfModelSpec,
  type CompiledNetwork,
} from './network-model';
export {
  NETWORK_CLIP_MARGIN,
  clippedNetworkBatch,
  networkClipTarget,
  trainNetwork,
  type NetworkClippedBatch,
  type NetworkExampleSource,
  type NetworkTrainingInput,
} from './network-training';
export { exportOnnx } from './onnx-export';
export { initialParameters, parameterLayout, type ParameterEntry, type ParameterLayout } from './parameter-layout';
export { fromFlat, toFlat } from './parameter-tensors';
export { morletBank, scatteringChannels, scatteringTransform, SCATTERING_KERNEL, type MorletBank } from './scattering';
export { seededUniform, type UniformRandom } from './seeded-random';
export {
  MAX_ENCODED_MAGNITUDE,
  canonicalCell,
  isHeldOutRecord,
  labelOfCell,
  parseCsv,
  prepareTabularData,
  RowDropTally,
  TabularRecordEncoder,
  type CategoricalFeature,
  type DroppedRows,
  type KeptRecord,
  type FeatureColumn,
  type LabelRule,
  type NumericFeature,
  type PreparedTabularData,
  type RecordOutcome,
  type RowDropReason,
  type TabularSchema,
  type TabularSplit,
} from './tabular-data';
export { exportTfjs, type TfjsExport, type TfjsModelJson, type TfjsWeightSpec } from './tfjs-export';
export type { LabelArray } from './training-input';
export { controlCorrection, scaffoldControlUpdate, serverControlStep, type ControlVariateUpdate } from './scaffold';
