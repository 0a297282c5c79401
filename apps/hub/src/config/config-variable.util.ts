// The table's entry type and the value schemas its variables share (ports, sizes, flags, S3 names, proxy lists).

import { z } from 'zod';
import { proxyEntryProblem } from './trusted-proxies.util';

/**
 * One environment variable the hub reads, with its documentation. The table of them (CONFIG_VARIABLES,
 * config.schema.ts) is the single source for validation, for the redaction of secrets in logs and for
 * `docs/configuration.md` (generated, checked by a test).
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

export const port = z.coerce.number().int().min(0).max(65535);
export const positiveInt = z.coerce.number().int().positive();
export const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
export const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
export const postgresUrl = z
  .string()
  .url()
  .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must start with postgres:// or postgresql://');

/** Comma-separated addresses and CIDR ranges; unset means none. */
export const proxyList = z
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
export const byteSize = z
  .string()
  .regex(/^\d+(b|kb|mb|gb)?$/i, 'must be a size such as 536870912, 512mb or 2gb')
  .transform((v) => {
    const [, digits = '0', unit = 'b'] = /^(\d+)([a-z]*)$/i.exec(v) ?? [];
    const scale: Record<string, number> = { b: 1, kb: 2 ** 10, mb: 2 ** 20, gb: 2 ** 30 };
    return Number(digits) * (scale[unit.toLowerCase()] ?? 1);
  })
  .refine((bytes) => bytes > 0 && Number.isSafeInteger(bytes), 'must be more than 0 bytes');

/** S3 bucket naming rules (AWS S3 user guide, "Bucket naming rules"): 3–63 of a-z, 0-9, '.' and '-'. */
export const s3BucketName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a bucket name: 3 to 63 of a-z, 0-9, "." and "-"');

/** '' or a prefix ending in '/', of characters safe in any S3 key and URL; no leading '/', no empty segment. */
export const s3Prefix = z
  .string()
  .regex(/^[A-Za-z0-9._\-/]*$/, 'may hold only letters, digits and . _ - /')
  .refine((v) => !v.startsWith('/') && !v.includes('//'), 'must not start with "/" nor hold "//"')
  .transform((v) => (v === '' || v.endsWith('/') ? v : `${v}/`));

/** Types one entry of the table (keeps each schema's output type for HubConfig). */
export function variable<T>(v: ConfigVariable<T>): ConfigVariable<T> {
  return v;
}
