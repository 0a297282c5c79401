import type { INestApplication } from '@nestjs/common';
import { GUARDS_METADATA } from '@nestjs/common/constants';
import { ThrottlerGuard } from '@nestjs/throttler';
import { ModulesContainer } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { HUB_ERROR_STATUS, HubErrorCode } from '@tessera/protocol';
import { ACCESS_METADATA, type AccessLevel } from '../access/access.decorator';
import { REFRESH_COOKIE } from '../auth/session-cookie.util';
import { ENDPOINT_METADATA, type EndpointOptions } from '../openapi/endpoint.decorator';
import { VIEW_SCHEMAS } from '../openapi/view-schemas.generated';
import { zodComponentSchemas, type JsonSchema } from '../openapi/zod-schemas';

/** The version of the API document (not of the hub): raise it when a route or a schema changes incompatibly. */
export const API_DOCUMENT_VERSION = '0.1.0';

/** The three listeners (docs/architecture.md, "Listeners"), as the document names them on every operation. */
export type ApiListener = 'people' | 'silo' | 'enrollment';

/** Security schemes, one per way of proving who calls. */
const SECURITY_SCHEMES = {
  bearer: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'People (console/API listener): the access token of POST /api/auth/login or /api/auth/refresh.',
  },
  refreshCookie: {
    type: 'apiKey',
    in: 'cookie',
    name: REFRESH_COOKIE,
    description: 'The httpOnly refresh cookie set by sign-in (ADR 0010); only POST /api/auth/refresh reads it.',
  },
  siloCertificate: {
    type: 'mutualTLS',
    description:
      'Agents (silo listener): a client certificate issued by the hub’s silo CA at enrollment; the TLS handshake ' +
      'refuses any other, and the hub checks revocation and suspension on every request.',
  },
} as const;

const DESCRIPTION = `Tessera’s hub: one API on three listeners (docs/architecture.md, “Listeners”). Every operation
names its listener in \`x-tessera-listener\` and who may call it in \`x-tessera-access\`:

| listener | who | security |
| --- | --- | --- |
| people (console/API, HTTP behind a TLS proxy) | administrators, auditors | \`bearer\` (session access token) |
| silo (HTTPS, mutual TLS) | enrolled agents | \`siloCertificate\` (client certificate of the silo CA) |
| enrollment (HTTPS) | agents without a certificate yet | the one-time enrollment token, in the request body |

A route answers on its own listener only (404 elsewhere). Errors have one shape, \`HubErrorBody\`; its \`error\` is
one of \`HubErrorCode\`, each with one HTTP status (libs/protocol hub-errors.ts): branch on the code, not the status.
This document is served on the people listener only (\`/api/docs\`) and committed as docs/openapi.json.`;

function listenerOf(access: readonly AccessLevel[]): ApiListener {
  if (access.includes('silo')) return 'silo';
  if (access.includes('enrollment')) return 'enrollment';
  return 'people';
}

interface Handler {
  access: readonly AccessLevel[];
  endpoint: EndpointOptions | undefined;
  /** Behind the rate limit (ThrottlerGuard): may answer 429. */
  throttled: boolean;
}

/** Every controller method of the application by its operation id (`Controller_method`, Nest's default). */
function handlersOf(app: INestApplication): Map<string, Handler> {
  const handlers = new Map<string, Handler>();
  for (const module of app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const controller = wrapper.metatype as (new (...args: never[]) => object) | null;
      if (typeof controller !== 'function') continue;
      const prototype = controller.prototype as Record<string, unknown>;
      for (const method of Object.getOwnPropertyNames(prototype)) {
        const fn = prototype[method];
        if (method === 'constructor' || typeof fn !== 'function') continue;
        const access = (Reflect.getMetadata(ACCESS_METADATA, fn) ??
          Reflect.getMetadata(ACCESS_METADATA, controller) ??
          []) as AccessLevel[];
        const endpoint = Reflect.getMetadata(ENDPOINT_METADATA, fn) as EndpointOptions | undefined;
        const guards = (Reflect.getMetadata(GUARDS_METADATA, fn) ?? []) as { name?: string }[];
        const throttled = guards.some((guard) => guard.name === ThrottlerGuard.name);
        handlers.set(`${controller.name}_${method}`, { access, endpoint, throttled });
      }
    }
  }
  return handlers;
}

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const errorRef = (name: string) => ({ $ref: `#/components/responses/${name}` });

interface ErrorAnswer {
  description: string;
  content: Record<string, { schema: JsonSchema; example: unknown }>;
}

/** The hub's error answers, one per status an operation can meet, each with the codes that travel with it. */
function errorResponses(): Record<string, ErrorAnswer> {
  const byStatus = new Map<number, string[]>();
  for (const code of Object.values(HubErrorCode)) {
    const status = HUB_ERROR_STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<string, ErrorAnswer> = {};
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[`Error${status}`] = {
      description: `The hub’s error body; \`error\` is one of ${codes.map((c) => `\`${c}\``).join(', ')}.`,
      content: {
        'application/json': {
          schema: ref('HubErrorBody'),
          example: {
            error: codes[0],
            message: 'What was refused and why, in words an operator can act on.',
            correlationId: 'c0ffee00-0000-4000-8000-000000000000',
          },
        },
      },
    };
  }
  return responses;
}

type Operation = {
  summary?: string;
  description?: string;
  security?: Record<string, string[]>[];
  parameters?: { in: string }[];
  requestBody?: unknown;
  responses: Record<string, { description?: string; content?: unknown } | { $ref: string }>;
  [extension: `x-${string}`]: unknown;
};

/** The statuses an operation's errors can have, from what it takes and who may call it. */
function errorStatuses(operation: Operation, method: string, path: string, handler: Handler | undefined): number[] {
  const access = handler?.access ?? [];
  const statuses = new Set<number>();
  const takesInput = operation.requestBody !== undefined || (operation.parameters ?? []).length > 0;
  if (takesInput) statuses.add(400);
  if (operation.requestBody !== undefined) statuses.add(413).add(415);
  if (access.includes('admin') || access.includes('auditor')) statuses.add(401).add(403);
  if (access.includes('silo')) statuses.add(403);
  if (path.includes('{')) statuses.add(404);
  // A change meets the current state: a stale plan, a closed round, a taken name (the codes of Error409).
  if (method !== 'get' && !access.includes('public')) statuses.add(409);
  if (handler?.throttled) statuses.add(429);
  return [...statuses].sort((a, b) => a - b);
}

function describe(
  operation: Operation,
  method: string,
  path: string,
  handler: Handler | undefined,
  errorAnswers: ReadonlySet<string>,
): void {
  const access = handler?.access ?? [];
  const listener = listenerOf(access);
  operation['x-tessera-listener'] = listener;
  operation['x-tessera-access'] = [...access];
  // The refresh route keeps its cookie scheme (@ApiCookieAuth); every other operation gets its listener's.
  const cookie = operation.security?.some((s) => 'refreshCookie' in s || REFRESH_COOKIE in s);
  if (cookie) operation.security = [{ refreshCookie: [] }];
  else if (access.includes('admin') || access.includes('auditor')) operation.security = [{ bearer: [] }];
  else if (listener === 'silo') operation.security = [{ siloCertificate: [] }];
  else operation.security = [];
  if (listener === 'enrollment') {
    const note = 'Enrollment listener: no certificate yet; the one-time enrollment token of the bundle is the proof.';
    operation.description = operation.description ? `${operation.description}\n\n${note}` : note;
  }
  const endpoint = handler?.endpoint;
  if (endpoint?.body) {
    const { body } = endpoint;
    operation.requestBody =
      'schema' in body
        ? {
            required: true,
            content: {
              'application/json': {
                schema: ref(body.schema),
                ...(body.example === undefined ? {} : { example: body.example }),
              },
            },
          }
        : {
            required: true,
            description: body.description,
            content: { [body.media]: { schema: { type: 'string', contentEncoding: 'binary' } } },
          };
  }
  const success = Object.keys(operation.responses).find((status) => /^2\d\d$/.test(status)) ?? '200';
  const answer = endpoint?.answer;
  if (answer && 'schema' in answer) {
    const schema = answer.list ? { type: 'array', items: ref(answer.schema) } : ref(answer.schema);
    operation.responses[success] = {
      description: answer.list ? `A list of ${answer.schema}.` : `${answer.schema}.`,
      content: {
        'application/json': { schema, ...(answer.example === undefined ? {} : { example: answer.example }) },
      },
    };
  } else if (answer && 'media' in answer) {
    operation.responses[success] = {
      description: answer.description,
      content: Object.fromEntries(
        answer.media.map((media) => [
          media,
          { schema: media.includes('json') ? {} : { type: 'string', contentEncoding: 'binary' } },
        ]),
      ),
    };
  } else if (answer && 'empty' in answer) {
    delete operation.responses[success];
    operation.responses['204'] = { description: 'Done; no body.' };
  }
  for (const status of errorStatuses(operation, method, path, handler)) {
    if (errorAnswers.has(`Error${status}`)) operation.responses[String(status)] = errorRef(`Error${status}`);
  }
  operation.responses.default = errorRef('Error500');
}

/**
 * The hub's OpenAPI 3.1 document, built from the application's routes: Nest's scan of the controllers and DTOs,
 * then, per operation, what `@Endpoint` and `@Access` declare (summary, answer and body schemas, listener, security,
 * error answers), with every schema a component (TypeScript views from view-schemas.generated.ts, zod wire schemas
 * from zod-schemas.ts). `npm run openapi` writes it to docs/openapi.json; a spec fails when the two differ.
 */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setTitle('Tessera hub API')
    .setDescription(DESCRIPTION)
    .setVersion(API_DOCUMENT_VERSION)
    .setOpenAPIVersion('3.1.0');
  for (const [name, scheme] of Object.entries(SECURITY_SCHEMES)) {
    builder.addSecurity(name, scheme as unknown as Parameters<DocumentBuilder['addSecurity']>[1]);
  }
  const document = SwaggerModule.createDocument(app, builder.build(), {
    operationIdFactory: (controller, method) => `${controller}_${method}`,
  });
  const handlers = handlersOf(app);
  const errorAnswers = errorResponses();
  const errorNames = new Set(Object.keys(errorAnswers));
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of ['get', 'put', 'post', 'delete', 'patch', 'head'] as const) {
      const operation = item[method] as Operation | undefined;
      if (!operation) continue;
      const handler = handlers.get(String((operation as { operationId?: string }).operationId));
      describe(operation, method, path, handler, errorNames);
    }
  }
  const components = document.components ?? {};
  for (const schema of Object.values(components.schemas ?? {})) dropTypesBesideReferences(schema as JsonSchema);
  components.schemas = {
    ...(components.schemas ?? {}),
    ...(VIEW_SCHEMAS as unknown as Record<string, JsonSchema>),
    ...zodComponentSchemas(),
    HubErrorCode: {
      type: 'string',
      enum: Object.values(HubErrorCode),
      description: 'Every code the hub answers with in HubErrorBody.error (libs/protocol hub-errors.ts).',
    },
  };
  components.responses = errorAnswers;
  document.components = components;
  return document;
}

/**
 * A DTO property declared by reference (`@ApiProperty({ allOf: [{ $ref }] })`, the plan) also gets the type Nest reads
 * from its TypeScript type (`object`); the reference alone is the schema.
 */
function dropTypesBesideReferences(schema: JsonSchema): void {
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  for (const [name, property] of Object.entries(properties)) {
    const only =
      Array.isArray(property.allOf) && property.allOf.length === 1 ? (property.allOf[0] as JsonSchema) : null;
    if (only && typeof only.$ref === 'string') {
      const { allOf: _allOf, type: _type, ...rest } = property;
      properties[name] = { ...rest, $ref: only.$ref };
    }
  }
}

/** Operations the document does not describe fully: no summary, or no schema (or media type) for the success. */
export function incompleteOperations(document: OpenAPIObject): string[] {
  const problems: string[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of ['get', 'put', 'post', 'delete', 'patch', 'head'] as const) {
      const operation = item[method] as Operation | undefined;
      if (!operation) continue;
      const name = `${method.toUpperCase()} ${path}`;
      if (!operation.summary) problems.push(`${name}: no summary (@Endpoint)`);
      const success = Object.entries(operation.responses).find(([status]) => /^2\d\d$/.test(status));
      const described = success && (success[0] === '204' || ('content' in success[1] && success[1].content));
      if (!described) problems.push(`${name}: no answer schema (@Endpoint answer)`);
    }
  }
  return problems;
}
