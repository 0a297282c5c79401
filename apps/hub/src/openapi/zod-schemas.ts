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

export type ZodSchemaName = keyof typeof ZOD_SCHEMAS;

export type JsonSchema = { [key: string]: unknown };

/**
 * JSON Schemas (2020-12, as OpenAPI 3.1 reads them) of every zod schema above, each one a component. A schema used
 * inside another is referred to (`#/components/schemas/Name`) rather than copied; request bodies get the input side
 * (what the hub accepts: defaults may be left out), answers the output side.
 */
export function zodComponentSchemas(): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(ZOD_SCHEMAS)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    uri: (id) => `#/components/schemas/${id}`,
    unrepresentable: 'any',
    io: 'input',
  });
  return Object.fromEntries(
    Object.entries(schemas).map(([id, schema]) => {
      const { $schema: _dialect, id: _id, ...rest } = schema as JsonSchema;
      return [id, rest];
    }),
  );
}
