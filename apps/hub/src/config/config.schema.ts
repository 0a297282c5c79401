import { z } from 'zod';
import { AUTH_VARIABLES } from './auth-config.schema';
import { bool, byteSize, logLevel, positiveInt, proxyList, variable } from './config-variable.util';
import { LISTENER_VARIABLES } from './listener-config.schema';
import { STORAGE_VARIABLES } from './storage-config.schema';

export type { ConfigVariable } from './config-variable.util';

/**
 * Every environment variable the hub reads, in the order docs/configuration.md lists them: listeners and PKI
 * (listener-config.schema.ts), storage (storage-config.schema.ts), sign-in (auth-config.schema.ts), then the limits and
 * operations below. Each entry is a ConfigVariable (config-variable.util.ts).
 */
export const CONFIG_VARIABLES = {
  ...LISTENER_VARIABLES,
  ...STORAGE_VARIABLES,
  ...AUTH_VARIABLES,
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
