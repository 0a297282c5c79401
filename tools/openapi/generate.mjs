#!/usr/bin/env node
/* global process */
// `npm run openapi`: regenerates the hub's API contract from the code, in order: the views' JSON Schemas (the hub
// compiles them in), the build, the OpenAPI document from the built hub, and the clients' types from the document.
// Commit the four files it writes; openapi-sync.spec.ts fails while any of them differs from what this would write.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  CLIENT_TYPES_FILE,
  clientTypesSource,
  DOCUMENT_FILE,
  documentSource,
  log,
  VIEW_SCHEMAS_FILE,
  viewSchemasSource,
} from './openapi-sources.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const write = (file, text) => {
  writeFileSync(resolve(root, file), text);
  log(`wrote ${file}`);
};

const build = () =>
  execFileSync(process.execPath, [resolve(root, 'node_modules/typescript/bin/tsc'), '-b', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });

write(VIEW_SCHEMAS_FILE, await viewSchemasSource(root));
try {
  build();
} catch {
  // tsc -b still emits; the files about to be regenerated (the clients' types) may be what fails. Built again below.
  log('the build failed; generating from what it emitted, then building again');
}
const { openApiDocumentOfCode } = await import(pathToFileURL(resolve(root, 'apps/hub/dist/openapi-app.js')).href);
const document = await documentSource(root, await openApiDocumentOfCode());
write(DOCUMENT_FILE, document);
write(CLIENT_TYPES_FILE, await clientTypesSource(root, document));
build();
