import { z } from 'zod';
import { formatNetworkShapeTable, inferNetworkShapes, type NetworkShapeTable } from './network-spec-shapes';
import { logisticRegressionNetwork, mlpNetwork } from './network-spec-presets';
import { NetworkSpec, NetworkSpecError, type NetworkTask } from './network-spec-schema';

/*
 * The model part of a study plan (issue 17). A plan's `model` is either one of the two registry choices every plan
 * had before declarative networks ('logistic-regression', 'mlp': kept byte for byte, so every stored approval keeps
 * its hash) or `{ kind: 'network', network }` with a `tessera.network/1` spec. This file holds what does not depend
 * on the rest of the plan's schemas (study-plan.ts imports it, never the other way round at load time).
 */

const columnName = z.string().min(1).max(64);

/** A network plan's model: the declarative network the steward approves byte for byte inside the plan hash. */
export const NetworkModelChoice = z.object({ kind: z.literal('network'), network: NetworkSpec }).strict();
export type NetworkModelChoice = z.infer<typeof NetworkModelChoice>;

/**
 * Multi-class label: the cell's text (canonical form, as for levels) is class k when it equals `classes[k]`. The
 * classes are declared here, never collected from a silo's file, so every silo numbers them alike. A row whose label
 * is none of them is dropped and counted for the silo's log, as a value outside a feature's levels is.
 */
export const ClassLabelRule = z
  .object({
    column: columnName,
    operator: z.literal('class'),
    classes: z.array(z.string().min(1).max(64)).min(2).max(1000),
  })
  .strict();
export type ClassLabelRule = z.infer<typeof ClassLabelRule>;

/**
 * Regression label: the cell's number, as (y − center) / scale with the declared scaling (as is without). Metrics
 * (MAE, RMSE) are reported in the column's own units: the agent undoes the scaling before it measures them.
 */
export const ValueLabelRule = z
  .object({
    column: columnName,
    operator: z.literal('value'),
    scaling: z.object({ center: z.number().finite(), scale: z.number().finite().positive() }).strict().optional(),
  })
  .strict();
export type ValueLabelRule = z.infer<typeof ValueLabelRule>;

/**
 * How a silo turns one image file into the network's input. Every constant is declared (never computed from the
 * silo's images: a statistic of the folder would make one image change how every other is encoded).
 * - `color`: 'grayscale' (luminance) or 'rgb' (alpha dropped); must match the network input's channels (1 or 3).
 * - `resize`: how an image of another size reaches the network's height × width: 'stretch' (aspect ratio not kept),
 *   'cover' (scaled to fill, the centre kept), 'contain' (scaled to fit, padded with black).
 * - `requireSize`: when given, an image whose decoded size differs is refused and counted per file, not resized.
 * - `normalization`: each channel's value v in [0, 1] (8-bit value / 255) becomes (v − mean) / std.
 * - `augmentation` (training only, never evaluation): a horizontal flip with probability 1/2, and a random crop of
 *   the image padded by `padding` pixels on each side (zeros after normalisation) back to its size. Each acts on one
 *   image with randomness that depends on the training seed and the step, never on another image.
 */
export const ImageTransform = z
  .object({
    color: z.enum(['grayscale', 'rgb']),
    resize: z.enum(['stretch', 'cover', 'contain']),
    requireSize: z
      .object({ height: z.number().int().min(1).max(65_535), width: z.number().int().min(1).max(65_535) })
      .strict()
      .optional(),
    normalization: z
      .object({
        mean: z.array(z.number().finite().min(-10).max(10)).min(1).max(3),
        std: z.array(z.number().finite().positive().max(100)).min(1).max(3),
      })
      .strict(),
    augmentation: z
      .object({
        horizontalFlip: z.boolean().optional(),
        randomCrop: z
          .object({ padding: z.number().int().min(1).max(64) })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type ImageTransform = z.infer<typeof ImageTransform>;

/** What the model part of the plan checks needs to know of the rest of the plan. */
export interface PlanModelContext {
  readonly model: { kind: 'logistic-regression' } | { kind: 'mlp' } | NetworkModelChoice;
  /** Tabular: the number of model inputs the feature schema encodes to. Images: the transform. */
  readonly data: { kind: 'tabular'; encodedFeatures: number } | { kind: 'images'; image: ImageTransform };
  readonly label: { operator: string; classes?: readonly string[] };
  readonly evaluationMode: 'none' | 'noisy' | 'exact';
}

/** The task a plan's label rule defines: binary for the threshold and set rules, else its own kind. */
export function labelTaskKind(label: { operator: string }): NetworkTask['kind'] {
  return label.operator === 'class' ? 'multiclass' : label.operator === 'value' ? 'regression' : 'binary';
}

/**
 * The message of a NetworkSpecError as a plan problem: `model.network: layer "conv_2", kernel: …`. The layer is named
 * by its id, never by its index, so the steward finds it in the layer table.
 */
export function networkProblem(err: NetworkSpecError): string {
  return `model.network: ${err.message}`;
}

/**
 * Every problem of the model part of a plan: the network's graph (shapes inferred, limits, the output's fit to its
 * task), and how the network meets the rest of the plan: its input against the data the schema describes, its task
 * against the label rule, and what the evaluation release can carry for that task.
 */
export function modelProblems(ctx: PlanModelContext): string[] {
  const out: string[] = [];
  const labelTask = labelTaskKind(ctx.label);
  if (ctx.model.kind !== 'network') {
    if (ctx.data.kind !== 'tabular') {
      out.push(`model.kind: ${ctx.model.kind} reads tabular features; an image study needs a network model`);
    }
    if (labelTask !== 'binary') {
      out.push(
        `schema.label.operator: ${ctx.model.kind} predicts a binary label; a ${labelTask} label needs a network model`,
      );
    }
    return out;
  }
  const spec = ctx.model.network;
  let table: NetworkShapeTable;
  try {
    table = inferNetworkShapes(spec);
  } catch (err) {
    if (err instanceof NetworkSpecError) return [networkProblem(err)];
    throw err;
  }
  const task = spec.task;
  if (task.kind !== labelTask) {
    out.push(
      `model.network.task.kind: the network learns a ${task.kind} task, but schema.label (operator '${ctx.label.operator}') defines a ${labelTask} label`,
    );
  } else if (task.kind === 'multiclass' && ctx.label.classes && ctx.label.classes.length !== task.classes) {
    out.push(
      `model.network.task.classes: the network has ${task.classes} classes, schema.label.classes declares ${ctx.label.classes.length}`,
    );
  }
  const input = spec.input;
  if (ctx.data.kind === 'tabular') {
    if (input.kind !== 'tabular') {
      out.push(`model.network.input.kind: the schema describes tabular records; the network reads ${input.kind}s`);
    } else {
      if (input.features !== ctx.data.encodedFeatures) {
        out.push(
          `model.network.input.features: the schema encodes each record to ${ctx.data.encodedFeatures} values (1 per numeric column, levels − 1 per categorical one); the network reads ${input.features}`,
        );
      }
      if ((input.categorical ?? []).length > 0) {
        out.push(
          'model.network.input.categorical: plans encode categorical columns one-hot through the schema; embedding inputs are not available in plans yet',
        );
      }
    }
  } else {
    const image = ctx.data.image;
    const channels = image.color === 'rgb' ? 3 : 1;
    if (input.kind !== 'image') {
      out.push(`model.network.input.kind: the schema describes images; the network reads ${input.kind} records`);
    } else if (input.channels !== channels) {
      out.push(
        `model.network.input.channels: the schema converts images to ${image.color} (${channels} channel${channels === 1 ? '' : 's'}); the network reads ${input.channels}`,
      );
    }
    const { mean, std } = image.normalization;
    if (mean.length !== channels || std.length !== channels) {
      out.push(
        `schema.image.normalization: needs one mean and one std per channel (${channels} for ${image.color}); got ${mean.length} and ${std.length}`,
      );
    }
    const crop = image.augmentation?.randomCrop;
    if (crop && input.kind === 'image' && crop.padding >= Math.min(input.height, input.width)) {
      out.push(
        `schema.image.augmentation.randomCrop.padding: ${crop.padding} pixels is not smaller than the ${input.height}×${input.width} input`,
      );
    }
  }
  if (ctx.evaluationMode === 'noisy' && task.kind !== 'binary') {
    out.push(
      `release.evaluation: noisy evaluation releases score histograms of a binary prediction; for a ${task.kind} task choose 'none', or 'exact' to release the task's metrics without differential privacy`,
    );
  }
  if (table.parameters === 0) out.push('model.network: the network has no trainable parameter');
  return out;
}

/** Short words for a task, for the plan the steward reads. */
export function describeTask(task: NetworkTask): string {
  switch (task.kind) {
    case 'binary':
      return 'binary classification (sigmoid, cross-entropy)';
    case 'multiclass':
      return `${task.classes}-class classification (softmax, cross-entropy)`;
    case 'regression':
      return task.loss === 'mse'
        ? 'regression (squared error)'
        : `regression (Huber loss, δ = ${task.huberDelta ?? 1})`;
  }
}

/** The metrics a silo measures on its held-out split for a task (what 'exact' evaluation releases). */
export function taskMetricNames(task: NetworkTask['kind']): string[] {
  switch (task) {
    case 'binary':
      return ['loss', 'accuracy', 'balanced accuracy', 'AUC', 'F1'];
    case 'multiclass':
      return ['loss', 'accuracy', 'balanced accuracy', 'macro one-vs-rest AUC', 'macro F1', 'confusion matrix'];
    case 'regression':
      return ['loss', 'MAE', 'RMSE', 'R²'];
  }
}

/**
 * The network of a plan's model: the spec itself for 'network' plans; for the registry choices, the preset they are
 * (logistic regression and the MLP, with the registry's layer names and flat layout, docs/models.md), so the steward
 * reads one layer table for every plan. Registry plans keep their own bytes: this mapping is for reading only.
 */
export function networkOfModel(
  model:
    | { kind: 'logistic-regression' }
    | { kind: 'mlp'; hiddenLayers: number[]; activation: 'relu' | 'tanh' }
    | NetworkModelChoice,
  encodedFeatures: number,
): NetworkSpec {
  switch (model.kind) {
    case 'network':
      return model.network;
    case 'logistic-regression':
      return logisticRegressionNetwork(encodedFeatures);
    case 'mlp':
      return mlpNetwork({
        features: encodedFeatures,
        hiddenLayers: model.hiddenLayers,
        activation: model.activation,
        task: { kind: 'binary' },
      });
  }
}

/** The layer table of a network as lines, for `tessera-agent studies show` and logs; the refusal when it has none. */
export function layerTableLines(spec: NetworkSpec): string[] {
  try {
    return formatNetworkShapeTable(inferNetworkShapes(spec)).split('\n');
  } catch (err) {
    if (err instanceof NetworkSpecError) return [networkProblem(err)];
    throw err;
  }
}
