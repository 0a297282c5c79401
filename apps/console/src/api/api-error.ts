import { guidanceFor } from './error-guidance.js';

/** An error answered by the hub (`{ error, message, correlationId, details? }`) or met on the way to it. */
export class ApiError extends Error {
  override readonly name = 'ApiError';

  constructor(
    /** HTTP status; 0 when the hub could not be reached. */
    readonly status: number,
    /**
     * The hub's error code (a HubErrorCode of @tessera/protocol, or one a newer hub added), a ConsoleErrorCode from
     * the console itself, or HTTP_<status> when the answer was not the hub's.
     */
    readonly code: string,
    message: string,
    readonly correlationId: string | null = null,
    readonly details: unknown = undefined,
  ) {
    super(message);
  }

  /** What to do about it, by code (error-guidance.ts); null when the code is none the console knows. */
  guidance(): string | null {
    return guidanceFor(this.code);
  }

  /** Lines to list under the message: validation problems come as `details` (a list of strings or objects). */
  detailLines(): string[] {
    const d = this.details;
    if (Array.isArray(d)) return d.map((x) => (typeof x === 'string' ? x : JSON.stringify(x)));
    if (d && typeof d === 'object') {
      const problems = (d as { problems?: unknown }).problems;
      if (Array.isArray(problems)) return problems.map((x) => (typeof x === 'string' ? x : JSON.stringify(x)));
    }
    return [];
  }
}

/** Reads a failed response into an ApiError, using the hub's error body when there is one. */
export async function apiErrorOf(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown; correlationId?: unknown; details?: unknown };
    if (typeof body.message === 'string') {
      return new ApiError(
        res.status,
        typeof body.error === 'string' ? body.error : `HTTP_${res.status}`,
        body.message,
        typeof body.correlationId === 'string' ? body.correlationId : null,
        body.details,
      );
    }
  } catch {
    // Not the hub's JSON error body (a proxy's page, for instance): report the status line below.
  }
  return new ApiError(res.status, `HTTP_${res.status}`, `The hub answered ${res.status} ${res.statusText}`.trim());
}
