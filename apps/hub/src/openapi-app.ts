import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { OpenAPIObject } from '@nestjs/swagger';
import { AppModule } from './app.module';
import { loadHubConfig } from './config/hub-config';
import { buildOpenApiDocument } from './api-document/openapi-document';

/**
 * The API document without a running hub: the application's module graph in Nest's preview mode (routes, DTOs and
 * decorators resolved, no provider instantiated, so no database, key or listener), then the same buildOpenApiDocument
 * the hub serves. What `npm run openapi` writes and the sync spec compares; the document depends on no setting.
 */
export async function openApiDocumentOfCode(): Promise<OpenAPIObject> {
  const config = loadHubConfig({});
  const database = {
    kind: 'external',
    url: 'postgres://unused.invalid/tessera',
    poolSize: 1,
    close: () => Promise.resolve(),
  } as const;
  const app = await NestFactory.create(AppModule.forRoot({ config, database, sessionKey: 'unused' }), {
    preview: true,
    logger: false,
    abortOnError: false,
  });
  try {
    return buildOpenApiDocument(app);
  } finally {
    await app.close();
  }
}
