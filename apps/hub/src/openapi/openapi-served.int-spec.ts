import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from '../testing/test-hub.test-util';

let hub: TestHub;

beforeAll(async () => {
  hub = await startTestHub('embedded');
});

afterAll(() => hub.dispose());

// The committed document is built from the code without a hub (Nest's preview mode, tools/openapi); a running hub,
// with its database, keys and configuration, must serve that same document, else the generated clients describe a
// hub no one runs.
describe('the OpenAPI document a running hub serves', () => {
  it('is the committed docs/openapi.json', async () => {
    const served: unknown = await (await fetch(`${hub.url}/api/docs/openapi.json`)).json();
    const committed = JSON.parse(readFileSync(resolve(__dirname, '../../../../docs/openapi.json'), 'utf8')) as unknown;
    expect(served).toEqual(committed);
  });
});
