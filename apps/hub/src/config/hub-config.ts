import { CONFIG_VARIABLES, type ConfigVariable, type HubConfig } from './config.schema';

export const HUB_CONFIG = Symbol('HUB_CONFIG');

/** A configuration problem, naming the variable; the process exits with it before anything starts. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly { variable: string; message: string }[]) {
    super(
      `Invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n')}\n` +
        'See docs/configuration.md for every variable.',
    );
    this.name = 'ConfigError';
  }
}

/** Validates the environment once, into a typed and frozen object. Reports every bad variable, not only the first. */
export function loadHubConfig(env: NodeJS.ProcessEnv = process.env): HubConfig {
  const problems: { variable: string; message: string }[] = [];
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(CONFIG_VARIABLES) as [string, ConfigVariable<unknown>][]) {
    const raw = env[v.name];
    const given = raw === undefined || raw === '' ? v.default : raw;
    if (given === undefined && v.required) {
      problems.push({ variable: v.name, message: 'is required' });
      continue;
    }
    const parsed = v.schema.safeParse(given);
    if (parsed.success) {
      out[key] = parsed.data;
    } else {
      // Never echo a secret's value back, even when it is wrong.
      const shown = v.secret ? '' : ` (got ${JSON.stringify(given)})`;
      problems.push({ variable: v.name, message: parsed.error.issues.map((i) => i.message).join('; ') + shown });
    }
  }
  if (env.TESSERA_ADMIN_USERNAME && !env.TESSERA_ADMIN_PASSWORD) {
    problems.push({ variable: 'TESSERA_ADMIN_PASSWORD', message: 'is required when TESSERA_ADMIN_USERNAME is set' });
  }
  if (Boolean(env.TESSERA_CA_CERT_FILE) !== Boolean(env.TESSERA_CA_KEY_FILE)) {
    problems.push({
      variable: env.TESSERA_CA_CERT_FILE ? 'TESSERA_CA_KEY_FILE' : 'TESSERA_CA_CERT_FILE',
      message: 'TESSERA_CA_CERT_FILE and TESSERA_CA_KEY_FILE must be set together',
    });
  }
  if (env.TESSERA_CA_KEY_FILE && !env.TESSERA_CA_KEY_PASSPHRASE) {
    problems.push({ variable: 'TESSERA_CA_KEY_PASSPHRASE', message: 'is required with TESSERA_CA_KEY_FILE' });
  }
  problems.push(...blobStoreProblems(env), ...oidcProblems(env));
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(out) as HubConfig;
}

/** OIDC sign-in needs its four settings together, and a role claim needs its map (and the reverse). */
function oidcProblems(env: NodeJS.ProcessEnv): { variable: string; message: string }[] {
  const required = [
    'TESSERA_OIDC_ISSUER',
    'TESSERA_OIDC_CLIENT_ID',
    'TESSERA_OIDC_CLIENT_SECRET',
    'TESSERA_OIDC_REDIRECT_URL',
  ];
  const optional = ['TESSERA_OIDC_ROLE_CLAIM', 'TESSERA_OIDC_ROLE_MAP'];
  const given = required.filter((name) => env[name]);
  if (given.length === 0) {
    return optional
      .filter((name) => env[name])
      .map((variable) => ({ variable, message: 'is set but OIDC sign-in is off (TESSERA_OIDC_ISSUER is unset)' }));
  }
  const problems = required
    .filter((name) => !env[name])
    .map((variable) => ({ variable, message: `is required with ${given[0]}` }));
  const [claim, map] = optional.map((name) => Boolean(env[name]));
  if (claim !== map) {
    problems.push({
      variable: claim ? 'TESSERA_OIDC_ROLE_MAP' : 'TESSERA_OIDC_ROLE_CLAIM',
      message: 'TESSERA_OIDC_ROLE_CLAIM and TESSERA_OIDC_ROLE_MAP must be set together',
    });
  }
  return problems;
}

/** The settings that only make sense together with TESSERA_BLOB_STORE=s3, and the ones it needs. */
function blobStoreProblems(env: NodeJS.ProcessEnv): { variable: string; message: string }[] {
  const problems: { variable: string; message: string }[] = [];
  const s3Only = Object.values(CONFIG_VARIABLES)
    .map((v) => v.name)
    .filter((name) => name.startsWith('TESSERA_S3_') && env[name]);
  const store = env.TESSERA_BLOB_STORE || 'filesystem';
  if (store === 'filesystem') {
    for (const name of s3Only) {
      problems.push({ variable: name, message: 'is set but TESSERA_BLOB_STORE is not s3: the hub would ignore it' });
    }
    return problems;
  }
  if (store !== 's3') return problems; // TESSERA_BLOB_STORE itself is reported
  if (!env.TESSERA_S3_BUCKET) {
    problems.push({ variable: 'TESSERA_S3_BUCKET', message: 'is required with TESSERA_BLOB_STORE=s3' });
  }
  if (!env.TESSERA_S3_REGION && !env.AWS_REGION && !env.AWS_DEFAULT_REGION) {
    problems.push({
      variable: 'TESSERA_S3_REGION',
      message: 'is required with TESSERA_BLOB_STORE=s3 unless AWS_REGION or AWS_DEFAULT_REGION is set',
    });
  }
  if (env.TESSERA_S3_SSE_KMS_KEY_ID && env.TESSERA_S3_SSE !== 'aws:kms') {
    problems.push({ variable: 'TESSERA_S3_SSE_KMS_KEY_ID', message: 'needs TESSERA_S3_SSE=aws:kms' });
  }
  return problems;
}

/** The configuration as it may be logged: secrets replaced. */
export function describeConfig(config: HubConfig): Record<string, unknown> {
  const shown: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(CONFIG_VARIABLES) as [keyof HubConfig, ConfigVariable<unknown>][]) {
    const value = config[key];
    shown[v.name] = v.secret && value !== undefined ? '[secret]' : value;
  }
  return shown;
}

/** Markdown table of every variable, for docs/configuration.md. */
export function configurationTable(): string {
  const rows = Object.values(CONFIG_VARIABLES).map(
    (v) =>
      `| \`${v.name}\` | ${v.description} | ${v.default === undefined ? '—' : `\`${v.default}\``} | ${v.secret ? 'yes' : 'no'} |`,
  );
  return ['| Variable | Description | Default | Secret |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
