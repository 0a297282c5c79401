import { inferNetworkShapes } from './network-spec-shapes';
import { NetworkSpecError } from './network-spec-schema';
import type { ModelChoice, StudyPlan, TrainingPlan } from './study-plan';
import { describeAggregation, describeScreening } from './study-plan-aggregation';
import { describeTask, layerTableLines, taskMetricNames } from './study-plan-model';
import { describePersonalization, personalizationModels } from './study-plan-personalization';
import { isImageSchema, type DataSchema, type FeatureColumn, type LabelRule } from './study-plan-schema';
import { describeSecureAggregation } from './study-plan-secagg';

// A study plan in words: what the steward reads before approving its hash (the agent's `studies show`, the
// console's approval view, the compliance report). Re-exported by study-plan.ts.

/** The local algorithm in the steward's words. */
function describeAlgorithm(t: TrainingPlan): string {
  if (t.algorithm === 'scaffold') {
    return 'scaffold (control variates: each silo keeps its own and uploads its change with the model update)';
  }
  return t.algorithm;
}

/**
 * Everything this plan releases from a silo WITHOUT differential privacy, in words (empty when everything a silo
 * sends is inside the DP guarantee). The steward consents to exactly this list: the agent's `studies show`, the
 * console's approval view and the compliance report print it.
 */
export function releasedWithoutDp(plan: StudyPlan): string[] {
  const out: string[] = [];
  if (plan.privacy.mode === 'none') {
    out.push(
      plan.secureAggregation
        ? "the sum of the silos' model updates, in which the hub never sees this silo's own (no differential privacy in this study)"
        : 'the model update itself (no differential privacy in this study)',
    );
  }
  if (plan.privacy.mode === 'dp-fedavg' && plan.privacy.noise !== 'distributed') {
    out.push(
      "the silo's clipped model update, to the hub (the hub adds the noise: DP-FedAvg protects against readers of the models, not against the hub)",
    );
  }
  if (plan.privacy.mode === 'dp-fedavg' && plan.screening) {
    out.push(
      "the screening statistics of the silo's clipped update (its L2 norm, its cosines to the round's aggregate and to the previous global update) and its flags, recorded by the hub in its audit trail and console every round",
    );
  }
  if (plan.release.trainingExamples === 'exact') out.push('the exact number of training records (FedAvg weight)');
  const e = plan.release.evaluation;
  if (e.mode === 'exact') {
    const when = e.rounds === 'every' ? 'for the model of every round' : 'for the final model';
    if (plan.model.kind === 'network') {
      const task = plan.model.network.task.kind;
      out.push(
        `test-split ${taskMetricNames(task).join(', ')} and the number of test records${task === 'binary' ? ' and of positives' : ''}, ${when}`,
      );
    } else {
      out.push(`test-split loss, accuracy, AUC, number of test records and of positives, ${when}`);
    }
    const local = personalizationModels(plan);
    if (local.length > 0) {
      out.push(
        `the same test-split metrics of this silo's ${local.map((m) => (m === 'personalized' ? `personalized (${plan.personalization?.method === 'select' ? 'selected' : 'fine-tuned'}) model` : 'local-only baseline model')).join(' and ')}, at the final evaluation (the models themselves stay at the silo)`,
      );
    }
  }
  return out;
}

/** The release plan in words. */
export function describeRelease(plan: StudyPlan): string {
  const e = plan.release.evaluation;
  const evaluation =
    e.mode === 'none'
      ? 'no evaluation results'
      : e.mode === 'noisy'
        ? `noisy test-split score histograms (${e.scoreBins} bins per label, discrete Gaussian noise, charged) ${e.rounds === 'every' ? 'every round' : 'for the final model'}`
        : `exact test-split metrics WITHOUT differential privacy ${e.rounds === 'every' ? 'every round' : 'for the final model'}`;
  const examples =
    plan.release.trainingExamples === 'exact'
      ? 'the exact training-record count WITHOUT differential privacy'
      : 'no record count (equal FedAvg weights)';
  return `${evaluation}; ${examples}`;
}

function describeFeature(f: FeatureColumn): string {
  if (f.type === 'categorical')
    return `${f.name} (one of ${f.levels.join('/')}${f.impute ? `, missing → ${f.impute}` : ''})`;
  const scaling = f.scaling ? ` (x − ${f.scaling.center}) / ${f.scaling.scale}` : '';
  return `${f.name}${scaling}${f.impute !== undefined ? `, missing → ${f.impute}` : ''}`;
}

function describeLabel(label: LabelRule): string {
  switch (label.operator) {
    case 'in':
      return `${label.column} in ${label.values.join('/')}`;
    case 'class':
      return `${label.column}, classes ${label.classes.map((c, k) => `${k} = ${c}`).join(', ')}`;
    case 'value':
      return `${label.column} (its value${label.scaling ? `, (y − ${label.scaling.center}) / ${label.scaling.scale}` : ''})`;
    default:
      return `${label.column} ${label.operator} ${label.threshold}`;
  }
}

function describeModel(model: ModelChoice): string {
  switch (model.kind) {
    case 'mlp':
      return `MLP, hidden layers ${model.hiddenLayers.join('×')} (${model.activation})`;
    case 'logistic-regression':
      return 'logistic regression';
    case 'network': {
      const spec = model.network;
      let parameters = '';
      try {
        parameters = `, ${inferNetworkShapes(spec).parameters.toLocaleString('en-US')} parameters`;
      } catch (err) {
        if (!(err instanceof NetworkSpecError)) throw err;
      }
      return `network (${spec.format}), ${spec.layers.length} layers${parameters}; ${describeTask(spec.task)}`;
    }
  }
}

function describeData(schema: DataSchema): string[] {
  if (isImageSchema(schema)) {
    const i = schema.image;
    const augment = [
      i.augmentation?.horizontalFlip ? 'horizontal flip' : null,
      i.augmentation?.randomCrop ? `random crop (padding ${i.augmentation.randomCrop.padding})` : null,
    ].filter((a) => a !== null);
    return [
      `images:       manifest column ${schema.fileColumn}; ${i.color}, resized by ${i.resize}${i.requireSize ? ` (only ${i.requireSize.width}×${i.requireSize.height} images accepted)` : ''}; normalised (v − [${i.normalization.mean.join(', ')}]) / [${i.normalization.std.join(', ')}]; augmentation ${augment.length === 0 ? 'none' : augment.join(', ')}`,
      `label:        ${describeLabel(schema.label)}`,
      `split:        held out for testing: ${Math.round(schema.split.testFraction * 100)}% of images, chosen by a keyed hash of each manifest row (salt ${schema.split.salt})`,
    ];
  }
  return [
    `features:     ${schema.features.map(describeFeature).join(', ')}`,
    `label:        ${describeLabel(schema.label)}`,
    `missing:      ${schema.missing}; held out for testing: ${Math.round(schema.split.testFraction * 100)}% of records, chosen by a keyed hash of each record (salt ${schema.split.salt})`,
  ];
}

/** A plan in words, for `tessera-agent studies show` and the console. */
export function describePlan(plan: StudyPlan): string[] {
  const t = plan.training;
  const p = plan.privacy;
  const model = describeModel(plan.model);
  const privacy =
    p.mode === 'none'
      ? 'NO differential privacy: model updates are sent without noise'
      : `${p.mode === 'dp-sgd' ? 'DP-SGD (unit: one record)' : p.noise === 'distributed' ? 'distributed DP-FedAvg (unit: the whole silo; each silo adds its share of discrete Gaussian noise before masking, sized so any t shares carry the whole noise)' : 'DP-FedAvg (unit: the whole silo)'}; target ε = ${p.targetEpsilon}, δ = ${p.delta}, clipping norm ${p.clipNorm}, noise multiplier ${p.noiseMultiplier}`;
  const withoutDp = releasedWithoutDp(plan);
  return [
    `study:        ${plan.name}`,
    `purpose:      ${plan.purpose}`,
    `model:        ${model}`,
    ...describeData(plan.schema),
    `training:     ${t.rounds} rounds × ${t.localEpochs} local epochs, batch ${t.batchSize}${p.mode === 'dp-sgd' ? ' (normaliser of the noisy gradient sum)' : ''}, learning rate ${t.learningRate}, ${describeAlgorithm(t)}, server optimizer ${t.serverOptimizer.kind}`,
    `aggregation:  ${describeAggregation(plan)}`,
    `screening:    ${describeScreening(plan)}`,
    ...(plan.secureAggregation ? [`secure agg.:  ${describeSecureAggregation(plan)}`] : []),
    ...(plan.personalization ? [`personalize:  ${describePersonalization(plan)}`] : []),
    `privacy:      ${privacy}`,
    `releases:     ${describeRelease(plan)}`,
    `without DP:   ${withoutDp.length === 0 ? 'nothing' : withoutDp.join('; ')}`,
    `participants: ${plan.silos.length} silos invited, at least ${plan.participation.minSilosPerRound} per round`,
    ...(plan.model.kind === 'network' ? ['layers:', ...layerTableLines(plan.model.network).map((l) => `  ${l}`)] : []),
  ];
}
