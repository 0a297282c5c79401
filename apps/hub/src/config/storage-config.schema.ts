// Where the hub keeps its state: the data directory, the blob store (file system or S3) and PostgreSQL.

import { z } from 'zod';
import { bool, positiveInt, postgresUrl, s3BucketName, s3Prefix, variable } from './config-variable.util';

export const STORAGE_VARIABLES = {
  dataDir: variable({
    name: 'TESSERA_DATA_DIR',
    description:
      'Directory for the hub state kept outside PostgreSQL: the embedded database (when DATABASE_URL is unset), blobs, generated secrets.',
    default: '.tessera/hub',
    secret: false,
    schema: z.string().min(1),
  }),
  blobOrphanGraceSeconds: variable({
    name: 'TESSERA_BLOB_ORPHAN_GRACE_SECONDS',
    description:
      'At boot the hub deletes blobs that no database row references (left by a crash between storing bytes and committing the row that names them) once they are older than this many seconds; younger ones may belong to an upload in flight on another replica.',
    default: '3600',
    secret: false,
    schema: positiveInt.max(30 * 86400),
  }),
  blobStore: variable({
    name: 'TESSERA_BLOB_STORE',
    description:
      'Where models, updates and optimizer state are kept: `filesystem` (TESSERA_DATA_DIR/blobs; one hub, or a volume every replica mounts read-write) or `s3` (an S3-compatible bucket, for several replicas; the `TESSERA_S3_*` settings). Credentials for `s3` come from the AWS SDK chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), AWS_PROFILE, web identity (Kubernetes service accounts) or the instance role.',
    default: 'filesystem',
    secret: false,
    schema: z.enum(['filesystem', 's3']),
  }),
  s3Bucket: variable({
    name: 'TESSERA_S3_BUCKET',
    description: 'Bucket of the S3 blob store (required with TESSERA_BLOB_STORE=s3). The hub never creates it.',
    secret: false,
    schema: s3BucketName.optional(),
  }),
  s3Region: variable({
    name: 'TESSERA_S3_REGION',
    description:
      'Region of the bucket. Unset: AWS_REGION, then AWS_DEFAULT_REGION; one of the three is required with TESSERA_BLOB_STORE=s3 (S3-compatible stores usually accept `us-east-1`).',
    secret: false,
    schema: z
      .string()
      .regex(/^[a-z0-9-]+$/, 'must be a region name such as eu-central-1')
      .optional(),
  }),
  s3Endpoint: variable({
    name: 'TESSERA_S3_ENDPOINT',
    description:
      'URL of an S3-compatible store (MinIO, Ceph RGW, OpenStack Swift, a cloud provider’s S3 API). Unset: Amazon S3 of the region. Use https unless the store is on the same host.',
    secret: false,
    schema: z
      .string()
      .url()
      .refine((v) => /^https?:\/\//.test(v), 'must start with http:// or https://')
      .optional(),
  }),
  s3ForcePathStyle: variable({
    name: 'TESSERA_S3_FORCE_PATH_STYLE',
    description:
      'Address the bucket as `<endpoint>/<bucket>/<key>` instead of `<bucket>.<endpoint>/<key>`: most self-hosted S3-compatible stores need true.',
    default: 'false',
    secret: false,
    schema: bool,
  }),
  s3Prefix: variable({
    name: 'TESSERA_S3_PREFIX',
    description:
      'Key prefix of every object the hub writes (committed blobs under `<prefix>blobs/`, uploads in progress under `<prefix>staging/`), to share a bucket. Letters, digits and `._-/`; a trailing `/` is added. Unset: none.',
    secret: false,
    schema: s3Prefix.optional().transform((v) => v ?? ''),
  }),
  s3PartSizeMib: variable({
    name: 'TESSERA_S3_PART_SIZE_MIB',
    description:
      'Part size of the multipart uploads that stream each blob into S3, in MiB (5 to 512). Each upload in flight holds two parts in memory (one filling, one on the wire), whatever the blob’s size.',
    default: '8',
    secret: false,
    schema: positiveInt.min(5, 'must be at least 5 (the smallest part S3 accepts)').max(512),
  }),
  s3ServerSideEncryption: variable({
    name: 'TESSERA_S3_SSE',
    description:
      'Server-side encryption the hub asks for on every object: `AES256` (keys managed by the store) or `aws:kms` (with TESSERA_S3_SSE_KMS_KEY_ID, or the account’s default KMS key). Unset: the bucket’s default encryption applies.',
    secret: false,
    schema: z.enum(['AES256', 'aws:kms']).optional(),
  }),
  s3KmsKeyId: variable({
    name: 'TESSERA_S3_SSE_KMS_KEY_ID',
    description: 'KMS key (id or ARN) for TESSERA_S3_SSE=aws:kms.',
    secret: false,
    schema: z.string().min(1).optional(),
  }),
  databaseUrl: variable({
    name: 'DATABASE_URL',
    description:
      'PostgreSQL connection URL. Unset: the hub runs an embedded PostgreSQL (PGlite) persisted under TESSERA_DATA_DIR/pgdata, reached through a Unix socket in TESSERA_DATA_DIR/db-socket (mode 0700; no TCP port) and locked to one process with flock(1).',
    secret: true,
    schema: postgresUrl.optional(),
  }),
  databasePoolSize: variable({
    name: 'TESSERA_DATABASE_POOL_SIZE',
    description: 'Connections in the pool to an external PostgreSQL (the embedded database always uses one).',
    default: '10',
    secret: false,
    schema: positiveInt.max(200),
  }),
  runMigrations: variable({
    name: 'TESSERA_RUN_MIGRATIONS',
    description:
      'Apply pending database migrations at boot. Set false to run them as an explicit step (`tessera-hub migrate`).',
    default: 'true',
    secret: false,
    schema: bool,
  }),
} as const;
