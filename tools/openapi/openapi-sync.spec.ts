import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SILO_API } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { openApiDocumentOfCode } from '../../apps/hub/src/openapi-app';
import { incompleteOperations } from '../../apps/hub/src/api-document/openapi-document';
import {
  CLIENT_TYPES_FILE,
  clientTypesSource,
  DOCUMENT_FILE,
  documentSource,
  VIEW_SCHEMAS_FILE,
  viewSchemasSource,
} from './openapi-sources.mjs';

const root = resolve(__dirname, '../..');
const committed = (file: string) => readFileSync(resolve(root, file), 'utf8');
const REGENERATE = 'run `npm run openapi` and commit what it writes';

// The API contract is generated in three steps; each committed file must be what its step makes of the code now.
describe('the committed API contract and the code', () => {
  it(`${VIEW_SCHEMAS_FILE} holds the schemas of the views the hub answers with`, async () => {
    expect(await viewSchemasSource(root), REGENERATE).toBe(committed(VIEW_SCHEMAS_FILE));
  }, 120_000);

  it(`${DOCUMENT_FILE} is the document the hub builds from its routes`, async () => {
    const document = await openApiDocumentOfCode();
    expect(await documentSource(root, document), REGENERATE).toBe(committed(DOCUMENT_FILE));
  }, 60_000);

  it(`${CLIENT_TYPES_FILE} holds the clients' types of the committed document`, async () => {
    expect(await clientTypesSource(root, committed(DOCUMENT_FILE)), REGENERATE).toBe(committed(CLIENT_TYPES_FILE));
  }, 60_000);
});

describe('the API document', () => {
  it('gives every operation a summary and a described answer, and every listener its security', async () => {
    const document = await openApiDocumentOfCode();
    expect(incompleteOperations(document)).toEqual([]);
    const operations = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.entries(item as Record<string, { security?: unknown; 'x-tessera-listener'?: string }>).map(
        ([method, op]) => ({ name: `${method} ${path}`, ...op }),
      ),
    );
    const byListener = (listener: string) => operations.filter((o) => o['x-tessera-listener'] === listener);
    expect(byListener('silo').length).toBeGreaterThan(10);
    for (const op of byListener('silo')) expect(op.security, op.name).toEqual([{ siloCertificate: [] }]);
    for (const op of byListener('enrollment')) expect(op.security, op.name).toEqual([]);
    expect(byListener('enrollment').map((o) => o.name)).toEqual(
      expect.arrayContaining([`post ${SILO_API.enroll}`, `get ${SILO_API.caCertificate}`]),
    );
    const people = operations.find((o) => o.name === 'get /api/studies');
    expect(people?.security).toEqual([{ bearer: [] }]);
  }, 60_000);

  it('describes the study plan with its real schema, not an open object', async () => {
    const document = (await openApiDocumentOfCode()) as unknown as {
      components: {
        schemas: Record<
          string,
          { type?: string; properties?: Record<string, unknown>; additionalProperties?: unknown }
        >;
      };
      paths: Record<
        string,
        Record<string, { requestBody?: { content: Record<string, { schema: { $ref?: string } }> } }>
      >;
    };
    const plan = document.components.schemas.StudyPlan;
    expect(plan?.type).toBe('object');
    expect(Object.keys(plan?.properties ?? {})).toEqual(
      expect.arrayContaining(['name', 'purpose', 'privacy', 'silos']),
    );
    expect(plan?.additionalProperties).toBe(false);
    const body = document.paths['/api/studies']?.post?.requestBody?.content['application/json']?.schema;
    const dto = document.components.schemas[String(body?.$ref).split('/').pop() ?? ''];
    expect(dto?.properties?.plan).toEqual({ $ref: '#/components/schemas/StudyPlan' });
  }, 60_000);
});
