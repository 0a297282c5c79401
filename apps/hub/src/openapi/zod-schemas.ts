import * as protocol from '@tessera/protocol';
import {
  CertificateGrant,
  Decision,
  DecisionRequest,
  EnrollmentBundle,
  EvaluationMetrics,
  EvaluationReport,
  FailureReport,
  HubErrorBody,
  PrivacySpend,
  SecAggAdvertisementsView,
  SecAggReceipt,
  SecAggSessionView,
  SecAggSharesView,
  SecAggUnmaskingView,
  SiloSelf,
  SiloStudy,
  StudyPlan,
  StudyStatus,
  TasksResponse,
  UpdateReceipt,
} from '@tessera/protocol';
import { KeyAdvertisement, ShareKeysMessage, UnmaskingResponse } from '@tessera/secagg';
import { z } from 'zod';
import { VIEW_ZOD_REFERENCES } from './view-schemas.generated';

/**
 * The wire types that are zod schemas, by the name the API document gives them: their JSON Schemas come from the
 * very schemas the hub validates with (z.toJSONSchema), so the document cannot promise what the hub refuses. The
 * plain TypeScript views that use one of these (StudyView's plan, RoundView's evaluation…) refer to it by name.
 */
export const ZOD_SCHEMAS = {
  StudyPlan,
  StudyStatus,
  Decision,
  DecisionRequest,
  EvaluationMetrics,
  PrivacySpend,
  EnrollmentBundle,
  CertificateGrant,
  SiloSelf,
  SiloStudy,
  TasksResponse,
  UpdateReceipt,
  EvaluationReport,
  FailureReport,
  HubErrorBody,
  SecAggSessionView,
  SecAggAdvertisementsView,
  SecAggSharesView,
  SecAggUnmaskingView,
  SecAggReceipt,
  KeyAdvertisement,
  ShareKeysMessage,
  UnmaskingResponse,
} as const;

/** Every export of @tessera/protocol by name: a view may use any of its zod schemas (VIEW_ZOD_REFERENCES). */
export type ProtocolExportName = keyof typeof protocol;

export type ZodSchemaName = keyof typeof ZOD_SCHEMAS | (typeof VIEW_ZOD_REFERENCES)[number];

export type JsonSchema = { [key: string]: unknown };

/**
 * JSON Schemas (2020-12, as OpenAPI 3.1 reads them) of every zod schema above, each one a component. A schema used
 * inside another is referred to (`#/components/schemas/Name`) rather than copied. The output side (what the hub
 * answers; the wire schemas have no defaults, so the input side of the bodies is the same schema).
 */
export function zodComponentSchemas(): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  const schemas: [string, unknown][] = [
    ...Object.entries(ZOD_SCHEMAS),
    ...VIEW_ZOD_REFERENCES.map((name) => [name, protocol[name]] as [string, unknown]),
  ];
  for (const [id, schema] of schemas) {
    if (!(schema instanceof z.ZodType)) throw new Error(`@tessera/protocol's ${id} is not a zod schema`);
    if (!registry.has(schema)) registry.add(schema, { id });
  }
  const { schemas: generated } = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    uri: (id) => `#/components/schemas/${id}`,
    unrepresentable: 'any',
    io: 'output',
    // A field that must be absent (`z.undefined()`, e.g. the kind of a feature schema before it had one): no value.
    override: (ctx) => {
      if (ctx.zodSchema._zod.def.type === 'undefined') ctx.jsonSchema.not = {};
    },
  });
  return Object.fromEntries(
    Object.entries(generated).map(([id, schema]) => {
      const { $schema: _dialect, id: _id, ...rest } = schema as JsonSchema;
      return [id, uniformTuples(rest) as JsonSchema];
    }),
  );
}

/**
 * zod writes a tuple of one type (a kernel's [height, width]) as `prefixItems` with `items: false`; the same array
 * said as `items` with minItems = maxItems is what code generators read as a tuple (openapi-typescript reads
 * `prefixItems` wrongly). Tuples of mixed types are left as they are.
 */
function uniformTuples(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(uniformTuples);
  if (node === null || typeof node !== 'object') return node;
  const out: JsonSchema = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, uniformTuples(v)]));
  const prefix: readonly unknown[] = Array.isArray(out.prefixItems) ? out.prefixItems : [];
  if (prefix.length > 0 && out.items === false) {
    const first = JSON.stringify(prefix[0]);
    if (prefix.every((item) => JSON.stringify(item) === first)) {
      const { prefixItems: _prefix, ...rest } = out;
      return { ...rest, items: prefix[0], minItems: prefix.length, maxItems: prefix.length };
    }
  }
  return out;
}
