/** How long a storage probe's result is reused (ms): probes every few seconds must not each write and fsync. */
export const STORAGE_PROBE_TTL_MS = 5_000;

export type ProbeResult = { ok: true } | { ok: false; reason: string };

/**
 * Runs `probe` at most once per `ttlMs` and shares its result (success or failure) with every caller in between;
 * concurrent callers wait for the same run.
 */
export class CachedProbe {
  private last: { at: number; result: Promise<ProbeResult> } | undefined;

  constructor(
    private readonly probe: () => Promise<void>,
    private readonly ttlMs = STORAGE_PROBE_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  result(): Promise<ProbeResult> {
    const t = this.now();
    if (!this.last || t - this.last.at >= this.ttlMs) {
      this.last = {
        at: t,
        result: this.probe().then(
          (): ProbeResult => ({ ok: true }),
          (err: unknown): ProbeResult => ({ ok: false, reason: err instanceof Error ? err.message : String(err) }),
        ),
      };
    }
    return this.last.result;
  }
}
