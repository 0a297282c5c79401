import { describe, expect, it } from 'vitest';
import { agentValues, deepMerge, defaults, render, validateValues, type Obj } from './helm-chart.test-util';

/**
 * What deploy/helm/tessera refuses: shapes through values.schema.json (Helm checks it before rendering), and the
 * combinations that render but cannot work through `fail` in templates/_helpers.tpl — each with its message.
 */

const S3_STORE = { type: 's3', s3: { bucket: 'tessera-hub-blobs', region: 'eu-central-1' } };
const over = (values: object) => deepMerge(defaults, values);

describe('values.schema.json', () => {
  it('accepts the defaults, the agent values and a full S3 deployment', () => {
    for (const values of [defaults, agentValues, over({ replicaCount: 2, hub: { blobStore: S3_STORE } })]) {
      expect(validateValues(values), JSON.stringify(validateValues.errors)).toBe(true);
    }
  });

  it.each([
    ['a misspelt key', { hub: { blobstore: { type: 's3' } } }, 'must NOT have additional properties'],
    ['an unknown blob store', { hub: { blobStore: { type: 'gcs' } } }, 'must be equal to one of the allowed values'],
    ['an unknown database', { hub: { database: { type: 'mysql' } } }, 'must be equal to one of the allowed values'],
    ['no replica', { replicaCount: 0 }, 'must be >= 1'],
    ['a part smaller than S3 takes', { hub: { blobStore: { s3: { partSizeMiB: 4 } } } }, 'must be >= 5'],
    ['a bucket name S3 refuses', { hub: { blobStore: { s3: { bucket: 'Tessera_Blobs' } } } }, 'must match pattern'],
    ['a plain-HTTP silo URL', { hub: { publicSiloUrl: 'http://hub:8443' } }, 'must match pattern'],
    ['an unknown component', { component: 'both' }, 'must be equal to one of the allowed values'],
  ])('refuses %s', (_label, values, message) => {
    expect(validateValues(over(values))).toBe(false);
    expect(
      validateValues.errors!.some((e) => e.message?.startsWith(message)),
      JSON.stringify(validateValues.errors),
    ).toBe(true);
  });
});

describe('the templates refuse what cannot work', () => {
  it.each([
    [
      'several replicas on the embedded database',
      { replicaCount: 2, hub: { database: { type: 'embedded' }, migrationJob: false, blobStore: S3_STORE } },
      'replicaCount > 1 needs hub.database.type=postgresql',
    ],
    ['several replicas on filesystem blobs', { replicaCount: 2 }, 'replicaCount > 1 needs hub.blobStore.type=s3'],
    [
      'several replicas with generated secrets',
      { replicaCount: 2, hub: { blobStore: S3_STORE, secrets: { existingSecret: '' } } },
      'replicaCount > 1 needs hub.secrets.existingSecret',
    ],
    ['no replica', { replicaCount: 0 }, 'replicaCount must be at least 1'],
    [
      'the migration Job on the embedded database',
      { hub: { database: { type: 'embedded' } } },
      'hub.migrationJob needs hub.database.type=postgresql',
    ],
    [
      'an operator CA without the passphrase Secret',
      { hub: { ca: { existingSecret: 'tessera-ca' }, secrets: { existingSecret: '' } } },
      'hub.ca.existingSecret needs hub.secrets.existingSecret',
    ],
    [
      'PostgreSQL without its Secret',
      { hub: { database: { existingSecret: '' } } },
      'hub.database.existingSecret is required',
    ],
    ['S3 without a bucket', { hub: { blobStore: { type: 's3' } } }, 'hub.blobStore.s3.bucket is required'],
    [
      'S3 without a region',
      { hub: { blobStore: { type: 's3', s3: { bucket: 'tessera-hub-blobs' } } } },
      'hub.blobStore.s3.region is required',
    ],
    [
      'a KMS key without aws:kms',
      { hub: { blobStore: { ...S3_STORE, s3: { ...S3_STORE.s3, kmsKeyId: 'alias/x', sse: 'AES256' } } } },
      'hub.blobStore.s3.kmsKeyId needs hub.blobStore.s3.sse=aws:kms',
    ],
    ['an unknown blob store', { hub: { blobStore: { type: 'gcs' } } }, 'hub.blobStore.type must be filesystem or s3'],
    [
      'an unknown database',
      { hub: { database: { type: 'mysql' } } },
      'hub.database.type must be postgresql or embedded',
    ],
    [
      'extraEnv overriding a chart setting',
      { hub: { extraEnv: { TESSERA_BLOB_STORE: 's3' } } },
      'hub.extraEnv must not set TESSERA_BLOB_STORE',
    ],
    ['an ingress without a host', { hub: { ingress: { enabled: true, host: '' } } }, 'hub.ingress.host is required'],
    ['an unknown component', { component: 'both' }, 'component must be hub or agent'],
  ])('%s', (_label, values, message) => {
    expect(() => render(over(values))).toThrow(message);
  });

  it('accepts each refused combination once its missing part is given', () => {
    for (const values of [
      { replicaCount: 2, hub: { blobStore: S3_STORE } },
      { hub: { database: { type: 'embedded' }, migrationJob: false } },
      { hub: { ca: { existingSecret: 'tessera-ca' } } },
      { hub: { blobStore: { ...S3_STORE, s3: { ...S3_STORE.s3, kmsKeyId: 'alias/x', sse: 'aws:kms' } } } },
      { hub: { extraEnv: { TESSERA_SILO_CERT_DAYS: '14' } } },
    ]) {
      expect(render(over(values)).length).toBeGreaterThan(0);
    }
  });
});

describe('the templates refuse an agent that cannot start', () => {
  const agent = (values: object) => deepMerge(agentValues, values) as Obj;
  const withEnv = (env: Record<string, string>) => {
    const values = agent({});
    // Replaces agent.env whole (deepMerge would keep TESSERA_DATA_FILE).
    return { ...values, agent: { ...(values.agent as Obj), env } };
  };

  it.each([
    [
      'a data file outside the data volume',
      withEnv({ TESSERA_DATA_FILE: '/var/lib/tessera/data.csv' }),
      'agent.env.TESSERA_DATA_FILE must name a file under /data/',
    ],
    ['no data file', withEnv({}), 'agent.env.TESSERA_DATA_FILE must name a file under /data/'],
    [
      'a state directory of its own',
      withEnv({ TESSERA_DATA_FILE: '/data/a.csv', TESSERA_STATE_DIR: '/tmp/state' }),
      'agent.env must not set TESSERA_STATE_DIR',
    ],
    [
      'neither an enrollment bundle nor an enrolled state',
      agent({ agent: { enrollment: { existingSecret: '' } } }),
      'a new agent needs its enrollment bundle',
    ],
  ])('%s', (_label, values, message) => {
    expect(() => render(values)).toThrow(message);
  });

  it('starts from an enrolled state without a bundle', () => {
    const manifests = render(
      agent({ agent: { enrollment: { existingSecret: '' }, state: { existingClaim: 'kept' } } }),
    );
    expect(manifests.map((m) => m.kind)).not.toContain('PersistentVolumeClaim');
  });
});
