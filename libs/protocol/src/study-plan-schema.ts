import { z } from 'zod';
import { ClassLabelRule, ImageTransform, ValueLabelRule } from './study-plan-model';

// The data section of a study plan (its `schema`): tabular records or images, the label, missing values and the
// local split; and the problems a schema can have beyond its shape. Re-exported by study-plan.ts.

const name = z.string().min(1).max(64);
const finitePositive = z.number().finite().positive();

/**
 * Every constant used to encode a record is declared here, in the plan, and never computed from a silo's file: a
 * statistic of the file (a mean, a standard deviation, the most frequent level) depends on every record, so adding
 * one record would change how every other record is encoded and break the neighbouring relation that differential
 * privacy is stated for (docs/privacy.md, "From the raw file to the wire").
 */
export const NumericScaling = z
  .object({
    /** The encoded value is (x − center) / scale. */
    center: z.number().finite(),
    scale: finitePositive,
  })
  .strict();
export type NumericScaling = z.infer<typeof NumericScaling>;

export const FeatureColumn = z.discriminatedUnion('type', [
  z
    .object({
      name,
      type: z.literal('numeric'),
      /** Declared scaling (absent: the value is used as is). */
      scaling: NumericScaling.optional(),
      /** Value that replaces a missing cell when the schema's `missing` is 'impute' (before scaling). */
      impute: z.number().finite().optional(),
    })
    .strict(),
  z
    .object({
      name,
      type: z.literal('categorical'),
      // Every silo must produce the same encoded columns whatever values it happens to hold: levels are fixed.
      levels: z.array(z.string().min(1).max(64)).min(2).max(256),
      /** Level that replaces a missing cell when the schema's `missing` is 'impute'; one of `levels`. */
      impute: z.string().min(1).max(64).optional(),
    })
    .strict(),
]);
export type FeatureColumn = z.infer<typeof FeatureColumn>;

export const LabelRule = z.union([
  z
    .object({
      column: name,
      operator: z.enum(['>', '>=', '<', '<=', '==', '!=']),
      threshold: z.number().finite(),
    })
    .strict(),
  z.object({ column: name, operator: z.literal('in'), values: z.array(z.string()).min(1) }).strict(),
  // Network plans only (study-plan-model.ts): a class index (multiclass) or the value itself (regression).
  ClassLabelRule,
  ValueLabelRule,
]);
export type LabelRule = z.infer<typeof LabelRule>;

/**
 * How a silo splits its records into training and held-out test records: by a keyed hash of each record alone
 * (HMAC-SHA-256 under `salt` of the record's canonical fields; the record is held out when the hash, read as a
 * fraction of 2^64, is below `testFraction`). Whether one record trains or evaluates therefore never depends on
 * any other record: adding or removing a record moves nothing else between the splits. Identical rows land in the
 * same split. The test size is binomial around testFraction·n rather than exact.
 */
export const RecordSplit = z
  .object({
    testFraction: z.number().gt(0).lt(1),
    /** Public per-study key of the hash (not a secret: the guarantee holds for every salt). */
    salt: z
      .string()
      .min(8)
      .max(128)
      .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces'),
  })
  .strict();
export type RecordSplit = z.infer<typeof RecordSplit>;

/** The feature schema: which columns, their declared encoding, the label, missing values and the local split. */
export const FeatureSchema = z
  .object({
    /** Column names in file order for headerless files; absent when the first row is a header. */
    columns: z.array(name).min(2).max(1024).optional(),
    missingValues: z.array(z.string().max(16)).max(16).optional(),
    features: z.array(FeatureColumn).min(1).max(1024),
    label: LabelRule,
    /** 'drop-rows': drop a row with any missing feature. 'impute': use each feature's declared `impute` value. */
    missing: z.enum(['drop-rows', 'impute']),
    split: RecordSplit,
  })
  .strict();
export type FeatureSchema = z.infer<typeof FeatureSchema>;

/**
 * The data of an image study: a folder of PNG or JPEG files and a CSV manifest (header row) with one row per image:
 * `fileColumn` holds the image's path relative to the folder, `label.column` its label. Each image is decoded and
 * transformed as `image` declares (study-plan-model.ts, ImageTransform) to the network input's size. The split hashes
 * each manifest row's own file path and label, as a tabular record's fields (RecordSplit).
 */
export const ImageSchema = z
  .object({
    kind: z.literal('images'),
    fileColumn: name,
    label: LabelRule,
    /** Label cells that mean "no label" (the row is dropped and counted); the empty cell always does. */
    missingValues: z.array(z.string().max(16)).max(16).optional(),
    image: ImageTransform,
    split: RecordSplit,
  })
  .strict();
export type ImageSchema = z.infer<typeof ImageSchema>;

/**
 * A plan's data: tabular records (FeatureSchema, every plan before image studies: no `kind` key, so their bytes are
 * unchanged) or images (ImageSchema, `kind: 'images'`). Discriminated by `kind` so a bad schema's problems name its
 * own fields, not "no union member matched".
 */
export const DataSchema = z.discriminatedUnion('kind', [
  FeatureSchema.extend({ kind: z.undefined().optional() }),
  ImageSchema,
]);
export type DataSchema = z.infer<typeof DataSchema>;

export function isImageSchema(schema: DataSchema): schema is ImageSchema {
  return 'kind' in schema && schema.kind === 'images';
}

/** The feature schema of a tabular plan; an image plan has none (a caller that reads CSV records has a bug). */
export function tabularSchemaOf(plan: { schema: DataSchema }): FeatureSchema {
  if (isImageSchema(plan.schema)) throw new Error('an image study has no tabular feature schema');
  return plan.schema;
}

export function labelProblems(label: LabelRule): string[] {
  if (label.operator !== 'class') return [];
  const dup = label.classes.find((c, i) => label.classes.indexOf(c) !== i);
  return dup === undefined ? [] : [`schema.label.classes: class "${dup}" appears twice`];
}

export function imageSchemaProblems(schema: ImageSchema): string[] {
  const out = labelProblems(schema.label);
  if (schema.fileColumn === schema.label.column) {
    out.push(`schema.fileColumn: "${schema.fileColumn}" is also the label column`);
  }
  return out;
}

export function tabularProblems(schema: FeatureSchema): string[] {
  const out = labelProblems(schema.label);
  const featureNames = schema.features.map((f) => f.name);
  const dup = featureNames.find((n, i) => featureNames.indexOf(n) !== i);
  if (dup) out.push(`schema.features: column "${dup}" appears twice`);
  if (featureNames.includes(schema.label.column)) {
    out.push(`schema.label.column: "${schema.label.column}" is also a feature`);
  }
  if (schema.columns) {
    for (const n of [...featureNames, schema.label.column]) {
      if (!schema.columns.includes(n)) out.push(`schema.columns: does not list "${n}"`);
    }
  }
  schema.features.forEach((f, i) => {
    if (schema.missing === 'impute' && f.impute === undefined) {
      out.push(`schema.features.${i}.impute: "${f.name}" needs a declared imputation value when missing is 'impute'`);
    }
    if (f.type === 'categorical' && f.impute !== undefined && !f.levels.includes(f.impute)) {
      out.push(`schema.features.${i}.impute: "${f.impute}" is not one of the levels of "${f.name}"`);
    }
  });
  return out;
}

/** Number of model inputs the schema produces: 1 per numeric column, levels − 1 per categorical one. */
export function encodedFeatureCount(schema: FeatureSchema): number {
  return schema.features.reduce((n, f) => n + (f.type === 'numeric' ? 1 : f.levels.length - 1), 0);
}
