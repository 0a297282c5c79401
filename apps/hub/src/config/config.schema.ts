import { z } from 'zod';
import { OIDC_CALLBACK_PATH, oidcIssuerProblem, parseOidcRoleMap } from './oidc-config.util';
import { proxyEntryProblem } from './trusted-proxies.util';

/**
 * Every environment variable the hub reads, with its documentation. This table is the single source for
 * validation, for the redaction of secrets in logs and for `docs/configuration.md` (generated, checked by a test).
 */
export interface ConfigVariable<T> {
  readonly name: string;
  readonly description: string;
  /** Default as written in the environment; `undefined` means optional with no default, or required. */
  readonly default?: string;
  readonly required?: boolean;
  /** Secrets are never logged and are shown as `[secret]` in diagnostics. */
  readonly secret: boolean;
  readonly schema: z.ZodType<T>;
}

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const postgresUrl = z
  .string()
  .url()
  .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must start with postgres:// or postgresql://');

/** Comma-separated addresses and CIDR ranges; unset means none. */
const proxyList = z
  .string()
  .optional()
  .transform((v) =>
    (v ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  )
  .superRefine((entries, ctx) => {
    for (const entry of entries) {
      const problem = proxyEntryProblem(entry);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }
  });

/** Bytes, or a count with a unit (kb, mb, gb: powers of 1024), e.g. 512mb. */
const byteSize = z
  .string()
  .regex(/^\d+(b|kb|mb|gb)?$/i, 'must be a size such as 536870912, 512mb or 2gb')
  .transform((v) => {
    const [, digits = '0', unit = 'b'] = /^(\d+)([a-z]*)$/i.exec(v) ?? [];
    const scale: Record<string, number> = { b: 1, kb: 2 ** 10, mb: 2 ** 20, gb: 2 ** 30 };
    return Number(digits) * (scale[unit.toLowerCase()] ?? 1);
  })
  .refine((bytes) => bytes > 0 && Number.isSafeInteger(bytes), 'must be more than 0 bytes');

/** S3 bucket naming rules (AWS S3 user guide, "Bucket naming rules"): 3–63 of a-z, 0-9, '.' and '-'. */
const s3BucketName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a bucket name: 3 to 63 of a-z, 0-9, "." and "-"');

/** '' or a prefix ending in '/', of characters safe in any S3 key and URL; no leading '/', no empty segment. */
const s3Prefix = z
  .string()
  .regex(/^[A-Za-z0-9._\-/]*$/, 'may hold only letters, digits and . _ - /')
  .refine((v) => !v.startsWith('/') && !v.includes('//'), 'must not start with "/" nor hold "//"')
  .transform((v) => (v === '' || v.endsWith('/') ? v : `${v}/`));

function variable<T>(v: ConfigVariable<T>): ConfigVariable<T> {
  return v;
}

export const CONFIG_VARIABLES = {
  host: variable({
    name: 'TESSERA_HOST',
    description: 'Address the console/API listener binds to.',
    default: '127.0.0.1',
    secret: false,
    schema: z.string().min(1),
  }),
  port: variable({
    name: 'TESSERA_PORT',
    description: 'Port of the console/API listener (people: administrators and auditors). 0 picks a free port.',
    default: '8080',
    secret: false,
    schema: port,
  }),
  siloHost: variable({
    name: 'TESSERA_SILO_HOST',
    description: 'Address the silo listener (mutual TLS, agents only) binds to.',
    default: '127.0.0.1',
    secret: false,
    schema: z.string().min(1),
  }),
  siloPort: variable({
    name: 'TESSERA_SILO_PORT',
    description: 'Port of the silo listener (mutual TLS). 0 picks a free port.',
    default: '8443',
    secret: false,
    schema: port,
  }),
  publicSiloUrl: variable({
    name: 'TESSERA_PUBLIC_SILO_URL',
    description:
      'URL agents use to reach the silo listener, written into enrollment bundles. Defaults to https://<TESSERA_SILO_HOST>:<port>.',
    secret: false,
    schema: z.string().url().optional(),
  }),
  enrollHost: variable({
    name: 'TESSERA_ENROLL_HOST',
    description: 'Address the enrollment listener (TLS with the hub certificate, no client certificate) binds to.',
    default: '127.0.0.1',
    secret: false,
    schema: z.string().min(1),
  }),
  enrollPort: variable({
    name: 'TESSERA_ENROLL_PORT',
    description:
      'Port of the enrollment listener, where an agent trades its one-time token and CSR for a certificate. 0 picks a free port.',
    default: '8444',
    secret: false,
    schema: port,
  }),
  publicEnrollUrl: variable({
    name: 'TESSERA_PUBLIC_ENROLL_URL',
    description:
      'URL agents use to reach the enrollment listener, written into enrollment bundles. Defaults to https://<TESSERA_ENROLL_HOST>:<port>.',
    secret: false,
    schema: z.string().url().optional(),
  }),
  serverNames: variable({
    name: 'TESSERA_SERVER_NAMES',
    description:
      'Comma-separated DNS names and IP addresses put in the hub TLS certificate the hub makes for itself (agents check them).',
    default: 'localhost,127.0.0.1,::1',
    secret: false,
    schema: z
      .string()
      .min(1)
      .transform((v) =>
        v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      ),
  }),
  caKeyPassphrase: variable({
    name: 'TESSERA_CA_KEY_PASSPHRASE',
    description:
      'Passphrase that encrypts the silo CA private key at rest (at least 16 characters). Unset: one is generated into TESSERA_DATA_DIR/secrets/ca.passphrase (mode 0600) — set it in production and keep it apart from database backups.',
    secret: true,
    schema: z.string().min(16, 'must be at least 16 characters').optional(),
  }),
  caCertificateFile: variable({
    name: 'TESSERA_CA_CERT_FILE',
    description:
      'Use this silo CA certificate (PEM) instead of the one the hub makes on first boot. Needs TESSERA_CA_KEY_FILE.',
    secret: false,
    schema: z.string().min(1).optional(),
  }),
  caKeyFile: variable({
    name: 'TESSERA_CA_KEY_FILE',
    description:
      'Private key of TESSERA_CA_CERT_FILE: an encrypted PKCS#8 PEM, decrypted with TESSERA_CA_KEY_PASSPHRASE.',
    secret: false,
    schema: z.string().min(1).optional(),
  }),
  siloCertificateDays: variable({
    name: 'TESSERA_SILO_CERT_DAYS',
    description: 'Lifetime of a silo client certificate in days; agents renew when a third of it remains.',
    default: '30',
    secret: false,
    schema: positiveInt.max(397),
  }),
  enrollmentTokenHours: variable({
    name: 'TESSERA_ENROLLMENT_TOKEN_HOURS',
    description: 'How long a one-time enrollment token stays usable, in hours.',
    default: '24',
    secret: false,
    schema: positiveInt.max(24 * 30),
  }),
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
  jwtSecret: variable({
    name: 'TESSERA_JWT_SECRET',
    description:
      'Key that signs session tokens (at least 32 characters). Unset: a random key is generated once and kept in TESSERA_DATA_DIR/secrets/jwt.key (mode 0600).',
    secret: true,
    schema: z.string().min(32, 'must be at least 32 characters').optional(),
  }),
  sessionTtlSeconds: variable({
    name: 'TESSERA_SESSION_TTL_SECONDS',
    description:
      'Idle timeout of a console/API session in seconds: it ends this long after its last refresh (each refresh slides it forward; the console refreshes while its tab is open and signs out after this long without activity).',
    default: '900',
    secret: false,
    schema: positiveInt.max(86400),
  }),
  accessTokenTtlSeconds: variable({
    name: 'TESSERA_ACCESS_TOKEN_TTL_SECONDS',
    description:
      'Lifetime of an access (bearer) token in seconds; a refresh token gets the next one. At most TESSERA_SESSION_TTL_SECONDS (a larger value is cut to it).',
    default: '300',
    secret: false,
    schema: positiveInt.min(30).max(3600),
  }),
  sessionMaxSeconds: variable({
    name: 'TESSERA_SESSION_MAX_SECONDS',
    description:
      'Longest a session lasts from sign-in, refreshed or not, in seconds; then the person signs in again (the console warns 5 minutes before).',
    default: '43200',
    secret: false,
    schema: positiveInt.min(300).max(30 * 86400),
  }),
  oidcIssuer: variable({
    name: 'TESSERA_OIDC_ISSUER',
    description:
      "Sign-in with a hospital's identity provider (OpenID Connect, ADR 0010): the provider's issuer URL, whose `/.well-known/openid-configuration` the hub reads. https, or http on a loopback address only (tests). Unset: OIDC sign-in is off. Needs TESSERA_OIDC_CLIENT_ID, TESSERA_OIDC_CLIENT_SECRET and TESSERA_OIDC_REDIRECT_URL.",
    secret: false,
    schema: z
      .string()
      .url()
      .refine((v) => oidcIssuerProblem(v) === null, 'must be https, or http on a loopback address')
      .optional(),
  }),
  oidcClientId: variable({
    name: 'TESSERA_OIDC_CLIENT_ID',
    description: 'The client id the identity provider registered for this hub (a confidential client).',
    secret: false,
    schema: z.string().min(1).optional(),
  }),
  oidcClientSecret: variable({
    name: 'TESSERA_OIDC_CLIENT_SECRET',
    description:
      "The client's secret at the identity provider (sent with HTTP Basic authentication to its token endpoint).",
    secret: true,
    schema: z.string().min(1).optional(),
  }),
  oidcRedirectUrl: variable({
    name: 'TESSERA_OIDC_REDIRECT_URL',
    description:
      'The address the provider sends the browser back to, as registered there: the public URL of the console/API listener followed by `/api/auth/oidc/callback`.',
    secret: false,
    schema: z
      .string()
      .url()
      .refine((v) => new URL(v).pathname === OIDC_CALLBACK_PATH, `must end with the path ${OIDC_CALLBACK_PATH}`)
      .optional(),
  }),
  oidcProviderName: variable({
    name: 'TESSERA_OIDC_PROVIDER_NAME',
    description: 'The provider as the sign-in page names it ("Sign in with …").',
    default: 'single sign-on',
    secret: false,
    schema: z.string().min(1).max(60),
  }),
  oidcScopes: variable({
    name: 'TESSERA_OIDC_SCOPES',
    description:
      'Scopes requested, space-separated; `openid` is required. Add the scope that puts TESSERA_OIDC_ROLE_CLAIM in the ID token if the provider needs one.',
    default: 'openid profile',
    secret: false,
    schema: z
      .string()
      .refine((v) => v.split(/\s+/).includes('openid'), 'must include openid')
      .transform((v) => v.split(/\s+/).filter(Boolean).join(' ')),
  }),
  oidcRoleClaim: variable({
    name: 'TESSERA_OIDC_ROLE_CLAIM',
    description:
      'A claim of the ID token (a string or a list of strings, e.g. `groups`) whose values TESSERA_OIDC_ROLE_MAP turns into a role. With both set, a person the provider vouches for who has no account yet gets one on first sign-in (audited as account.created by the system). Unset: an administrator links every account.',
    secret: false,
    schema: z.string().min(1).optional(),
  }),
  oidcRoleMap: variable({
    name: 'TESSERA_OIDC_ROLE_MAP',
    description:
      'Claim values to roles, comma-separated `value=role` pairs (role admin or auditor), e.g. `tessera-admins=admin,ward-audit=auditor`. A person matching both gets admin; matching none is refused.',
    secret: false,
    schema: z
      .string()
      .optional()
      .transform((v, ctx) => {
        const parsed = parseOidcRoleMap(v ?? '');
        if (typeof parsed === 'string') {
          ctx.addIssue({ code: 'custom', message: parsed });
          return z.NEVER;
        }
        return parsed;
      }),
  }),
  adminUsername: variable({
    name: 'TESSERA_ADMIN_USERNAME',
    description:
      'First boot only: creates this administrator when the hub has no account yet (3 to 64 letters, digits, dots, dashes, underscores).',
    secret: false,
    // The account rules of accounts/account-rules.util.ts, checked here too so `config --check` catches a bad name.
    schema: z
      .string()
      .regex(/^[A-Za-z0-9._-]{3,64}$/, 'must be 3 to 64 letters, digits, dots, dashes or underscores')
      .optional(),
  }),
  adminPassword: variable({
    name: 'TESSERA_ADMIN_PASSWORD',
    description: 'First boot only: the password of TESSERA_ADMIN_USERNAME (at least 12 characters).',
    secret: true,
    schema: z.string().min(12, 'must be at least 12 characters').optional(),
  }),
  loginRateLimit: variable({
    name: 'TESSERA_LOGIN_RATE_LIMIT',
    description: 'Login attempts allowed per client address per minute.',
    default: '10',
    secret: false,
    schema: positiveInt,
  }),
  bodyLimit: variable({
    name: 'TESSERA_BODY_LIMIT',
    description: 'Largest JSON request body accepted (bytes, or with a unit: 100kb, 1mb).',
    default: '1mb',
    secret: false,
    schema: z.string().regex(/^\d+(b|kb|mb)?$/i, 'must be a size such as 1048576, 100kb or 1mb'),
  }),
  aggregationMemory: variable({
    name: 'TESSERA_AGGREGATION_MEMORY',
    description:
      "Working memory a round's robust aggregation and its update screening may each use (bytes, or with a unit: 512mb, 2gb). A plan whose aggregator or screening would not fit it for its invited silos and its model, in memory or blockwise over the blob store, is refused when it is created or versioned; at a round's close the hub runs them in memory when that fits, else blockwise (docs/aggregation.md). FedAvg streams one update at a time and is not checked.",
    default: '512mb',
    secret: false,
    schema: byteSize,
  }),
  aggregationBlockParameters: variable({
    name: 'TESSERA_AGGREGATION_BLOCK_PARAMETERS',
    description:
      'Coordinates per block when a round is aggregated or screened blockwise: each read takes 4 × this many bytes of every update (65536: 256 KiB). Smaller blocks need less memory and more reads of the blob store.',
    default: '65536',
    secret: false,
    schema: positiveInt.max(2 ** 26),
  }),
  aggregationThreads: variable({
    name: 'TESSERA_AGGREGATION_THREADS',
    description:
      "Worker threads that sum a round's FedAvg or DP-FedAvg updates (each owns a range of the coordinates; the hub's main thread only reads the blocks and keeps serving requests): auto (one per core for a round of at least 2^24 parameter·updates; a smaller one sums on the main thread in millisecond steps), or 1 to 64; 0 sums on the main thread (single-core fallback). The result is the same bits whatever the count.",
    default: 'auto',
    secret: false,
    schema: z.union([z.literal('auto'), z.coerce.number().int().min(0).max(64)]),
  }),
  logLevel: variable({
    name: 'TESSERA_LOG_LEVEL',
    description: 'Log level (fatal, error, warn, info, debug, trace, silent).',
    default: 'info',
    secret: false,
    schema: logLevel,
  }),
  auditCheckpointSeconds: variable({
    name: 'TESSERA_AUDIT_CHECKPOINT_SECONDS',
    description:
      'How often the hub signs a checkpoint of its audit chain, in seconds (only when records were appended since the last one).',
    default: '300',
    secret: false,
    schema: positiveInt.max(86400),
  }),
  shutdownTimeoutMs: variable({
    name: 'TESSERA_SHUTDOWN_TIMEOUT_MS',
    description: 'On SIGTERM, how long in-flight requests may take to finish before the hub closes anyway.',
    default: '10000',
    secret: false,
    schema: positiveInt,
  }),
  webhookAllowLoopbackHttp: variable({
    name: 'TESSERA_WEBHOOK_ALLOW_LOOPBACK_HTTP',
    description:
      'Accept webhook endpoints at plain http://127.0.0.1 (a receiver on the hub machine, tests). Otherwise every endpoint must use https.',
    default: 'false',
    secret: false,
    schema: bool,
  }),
  webhookRetryBaseSeconds: variable({
    name: 'TESSERA_WEBHOOK_RETRY_BASE_SECONDS',
    description:
      'Wait before the first retry of a failed webhook delivery, in seconds; it doubles per attempt (with jitter, at most one hour) for 8 attempts, then the delivery is marked failed.',
    default: '10',
    secret: false,
    schema: positiveInt.max(3600),
  }),
  trustedProxies: variable({
    name: 'TESSERA_TRUSTED_PROXIES',
    description:
      'Reverse proxies in front of the console/API listener, as comma-separated addresses or CIDR ranges (e.g. `127.0.0.1,10.0.0.0/8`). X-Forwarded-For is believed only from these; the client address it yields keys the login rate limit. Unset: the header is ignored and the TCP peer is the client.',
    secret: false,
    schema: proxyList,
  }),
  enrollTrustedProxies: variable({
    name: 'TESSERA_ENROLL_TRUSTED_PROXIES',
    description:
      'The same for the enrollment listener (its enrollment rate limit). The silo listener never reads X-Forwarded-For: a proxy cannot add headers to a mutual-TLS connection without terminating it.',
    secret: false,
    schema: proxyList,
  }),
  trustProxy: variable({
    name: 'TESSERA_TRUST_PROXY',
    description:
      'Removed: `true` believed X-Forwarded-For from any client, so a client could pick its own rate-limit bucket. Only `false` is accepted; list your proxies in TESSERA_TRUSTED_PROXIES instead.',
    default: 'false',
    secret: false,
    schema: z.enum(['false', '0'], {
      error:
        'is no longer supported (it trusted X-Forwarded-For from every client); list the proxy addresses in TESSERA_TRUSTED_PROXIES (and TESSERA_ENROLL_TRUSTED_PROXIES) instead',
    }),
  }),
} as const;

type Vars = typeof CONFIG_VARIABLES;
export type HubConfig = { readonly [K in keyof Vars]: z.output<Vars[K]['schema']> };
