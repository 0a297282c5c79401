// @tessera/aggregation: public surface.
export {
  AggregationErrorCode,
  AggregationException,
  DigestMismatchException,
  type DigestMismatch,
} from './aggregation.exception';
export type {
  AggregationTrace,
  ClipTrace,
  CoordinateMedianTrace,
  GeometricMedianTrace,
  KrumTrace,
  MeanTrace,
  NormBoundTrace,
  TrimmedMeanTrace,
  NoiseTrace,
  ServerOptimizerAlgorithm,
  ServerStepTrace,
  WeightTrace,
} from './aggregation-trace';
export { l2Norm, squaredNorm, validateUpdate, type UpdateLimits } from './update-validation';
export {
  accumulateScaled,
  WeightedMeanAccumulator,
  type MeanWeighting,
  type WeightedMeanAccumulatorOptions,
} from './weighted-mean-accumulator';
export {
  FedAvgAggregator,
  type AggregatedDelta,
  type AggregatedSum,
  type FedAvgAggregatorOptions,
  type DeltaAggregator,
  type SumDeltaAggregator,
} from './delta-aggregator';
export {
  createDpFedAvgAggregator,
  DpFedAvgAggregator,
  releaseDpFedAvgSum,
  type DpFedAvgOptions,
  type SumNoiseMechanism,
} from './dp-fed-avg';
export {
  FedAdagradServerOptimizer,
  FedAdamServerOptimizer,
  FedAvgMServerOptimizer,
  FedAvgServerOptimizer,
  FedYogiServerOptimizer,
  type AdaptiveServerOptions,
  type FedAvgMServerOptions,
  type FedAvgServerOptions,
  type ServerOptimizer,
  type ServerStep,
} from './server-optimizer';
export { STATE_HEADER_BYTES, STATE_VERSION } from './optimizer-state-codec';
export {
  coordinateMedian,
  coordinateMedianBlockwise,
  trimmedMean,
  trimmedMeanBlockwise,
  type BlockwiseOptions,
} from './robust-aggregation';
export { DEFAULT_BLOCK_PARAMETERS, inMemoryBlockReader, type UpdateBlockReader } from './update-blocks';
export {
  pairwiseSquaredDistances,
  pairwiseSquaredDistancesBlockwise,
  updateNorms,
  updateNormsBlockwise,
} from './update-geometry';
export { krum, krumBlockwise, krumSelect, type KrumOptions, type KrumResult, type KrumSelection } from './krum';
export {
  geometricMedian,
  geometricMedianBlockwise,
  type GeometricMedianOptions,
  type GeometricMedianResult,
} from './geometric-median';
export {
  boundNorms,
  boundNormsBlockwise,
  decideNormBound,
  scaleUpdate,
  type NormBound,
  type NormBoundDecision,
} from './norm-bound';
export {
  DEFAULT_SCALE_FLOORS,
  MIN_SCREENED_UPDATES,
  screenStatistics,
  screenUpdates,
  screenUpdatesBlockwise,
  updateStatistics,
  updateStatisticsBlockwise,
  type ScreenedStatistic,
  type ScreeningFlag,
  type ScreeningOptions,
  type ScreeningReferences,
  type ScreeningReport,
  type StatisticSummary,
  type UpdateScreening,
  type UpdateStatistics,
} from './update-screening';
export {
  aggregateRobust,
  aggregateRobustBlockwise,
  checkAggregationChoice,
  type AggregationChoice,
  type AggregatorKind,
  type AggregatorSpec,
  type BlockwiseAggregationOptions,
  type RobustAggregate,
  type RobustAggregatorSpec,
} from './robust-aggregator';
export {
  aggregationMemory,
  chooseAggregationVariant,
  formatBytes,
  screeningMemory,
  type AggregationMemory,
  type AggregationShape,
  type AggregationVariant,
} from './aggregator-memory';
export { aggregateRound, fedAvg, type RoundOutcome, type RoundTraceEntry, type SiloUpdate } from './round-aggregation';
export {
  DEFAULT_SUM_BLOCK_PARAMETERS,
  ThreadedBlockSum,
  type BlockPassResult,
  type BlockScanTerms,
  type BlockSumTerms,
  type ThreadedBlockSumOptions,
  type UpdateBlockSource,
} from './threaded-block-sum';
export { fusedDpFedAvg, fusedFedAvg, type ExpectedDigests, type FusedFedAvgTerms } from './fused-aggregation';
export { StreamingSquaredNorm } from './streaming-norm';
