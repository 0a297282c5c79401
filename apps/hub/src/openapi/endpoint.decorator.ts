import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiOperation } from '@nestjs/swagger';
import type { ViewSchemaName } from './view-schemas.generated';
import type { ZodSchemaName } from './zod-schemas';

/** A schema of the API document by its component name: a TypeScript view (api-types.ts) or a zod wire schema. */
export type SchemaName = ViewSchemaName | ZodSchemaName;

/** What a route answers on success. */
export type EndpointAnswer =
  /** A JSON body of this schema (`list`: an array of it). */
  | { schema: SchemaName; list?: boolean; example?: unknown }
  /** A file or a stream in one of these media types (its bytes are not described further). */
  | { media: readonly string[]; description: string }
  /** Nothing (204). */
  | { empty: true };

/** What a route takes as its body, when it is not a class-validator DTO (zod schemas, binary frames). */
export type EndpointBody = { schema: SchemaName; example?: unknown } | { media: string; description: string };

export interface EndpointOptions {
  /** One line: what the route does. */
  summary: string;
  /** More, when the summary does not say it all (Markdown). */
  description?: string;
  answer: EndpointAnswer;
  body?: EndpointBody;
}

export const ENDPOINT_METADATA = 'tessera:openapi-endpoint';

/**
 * Describes a route for the API document: its summary, its answer's schema and, for routes that validate their body
 * themselves, the body's schema. buildOpenApiDocument (openapi-document.ts) reads it together with the route's
 * `@Access` and adds the listener, the security and the hub's error answers, so no handler repeats those.
 */
export const Endpoint = (options: EndpointOptions): MethodDecorator =>
  applyDecorators(
    ApiOperation({ summary: options.summary, ...(options.description ? { description: options.description } : {}) }),
    SetMetadata(ENDPOINT_METADATA, options),
  );
