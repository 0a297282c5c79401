/**
 * Typed errors of @tessera/ml. Every code names the field that was wrong, so callers (the agent, the hub's plan
 * validation) can map it without parsing messages. Messages never contain data values: hospital records must not
 * leak into logs through an error.
 */

/** Which field of a model specification is invalid. */
export enum ModelSpecErrorCode {
  Spec = 'SPEC',
  Kind = 'KIND',
  InputDim = 'INPUT_DIM',
  HiddenLayers = 'HIDDEN_LAYERS',
  Activation = 'ACTIVATION',
  Task = 'TASK',
  Classes = 'CLASSES',
}

export class ModelSpecException extends Error {
  constructor(
    readonly code: ModelSpecErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ModelSpecException';
  }
}

/** Which input of local training, evaluation or export is invalid. */
export enum TrainingInputErrorCode {
  Parameters = 'PARAMETERS',
  Features = 'FEATURES',
  Labels = 'LABELS',
  Epochs = 'EPOCHS',
  Steps = 'STEPS',
  BatchSize = 'BATCH_SIZE',
  LearningRate = 'LEARNING_RATE',
  ProximalMu = 'PROXIMAL_MU',
  Seed = 'SEED',
  ClipNorm = 'CLIP_NORM',
  NoiseMultiplier = 'NOISE_MULTIPLIER',
  SamplingRate = 'SAMPLING_RATE',
  Noise = 'NOISE',
  Bins = 'BINS',
}

export class TrainingInputException extends Error {
  constructor(
    readonly code: TrainingInputErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TrainingInputException';
  }
}

/**
 * What is wrong with a tabular data set's structure or its schema. `column` names the column; values are never
 * echoed. A single row's bad content is not an error: the row is dropped and counted (PreparedTabularData.dropped).
 */
export enum TabularDataErrorCode {
  Schema = 'SCHEMA',
  MissingColumn = 'MISSING_COLUMN',
  MalformedCsv = 'MALFORMED_CSV',
}

export class TabularDataException extends Error {
  constructor(
    readonly code: TabularDataErrorCode,
    message: string,
    /** The column concerned, when there is one. A schema name, never a cell value. */
    readonly column?: string,
  ) {
    super(message);
    this.name = 'TabularDataException';
  }
}

/** Throws the TrainingInputException for `code`. */
export function fail(code: TrainingInputErrorCode, message: string): never {
  throw new TrainingInputException(code, message);
}
