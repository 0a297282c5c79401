import { request as httpsRequest } from 'node:https';
import { AgentError, AgentErrorCode } from '../agent.error';

/** TLS material for one call: the CA to trust (pinned), and our certificate for mutual TLS. */
export interface TlsMaterial {
  caCertificatePem?: string;
  privateKeyPem?: string;
  certificatePem?: string;
  /** Only for fetching the CA before it is pinned: nothing secret is sent on such a call. */
  insecureSkipVerify?: boolean;
}

export interface HubResponse {
  status: number;
  body: unknown;
}

/** A request body: JSON, or raw bytes (model updates travel as application/octet-stream, never JSON arrays). */
export type HubRequestBody = { json: unknown } | { bytes: Uint8Array; contentType?: string };

export interface HubRequestOptions {
  body?: HubRequestBody;
  /** The Accept header; JSON unless a binary answer is wanted. */
  accept?: string;
  /** Socket idle timeout in ms; a long poll must allow more than its wait. */
  timeoutMs?: number;
  /** Refuse (and stop reading) an answer larger than this many bytes. */
  maxResponseBytes?: number;
  /** Aborts the call (the daemon stops a long poll at SIGTERM). */
  signal?: AbortSignal;
}

/** An answer as bytes, with its content type; JSON answers are parsed by jsonOf. */
export interface HubRawResponse {
  status: number;
  contentType: string;
  bytes: Buffer;
  /** The Retry-After header, when the hub (or a proxy) sent one with a 503: seconds or an HTTP date. */
  retryAfter?: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** Messages for the TLS failures an operator meets, in words they can act on. */
function explain(err: NodeJS.ErrnoException, url: string): AgentError {
  const code = err.code ?? '';
  if (code === 'ABORT_ERR' || err.name === 'AbortError') {
    return new AgentError(AgentErrorCode.HUB_UNREACHABLE, `Call to ${url} was cancelled.`);
  }
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET', 'EPIPE'].includes(code)) {
    return new AgentError(AgentErrorCode.HUB_UNREACHABLE, `Cannot reach the hub at ${url} (${code}).`);
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new AgentError(
      AgentErrorCode.HUB_NOT_TRUSTED,
      `The hub's certificate does not name ${new URL(url).host}: ${err.message}`,
    );
  }
  if (
    /certificate (required|unknown|revoked|expired)|alert (bad|unknown|handshake)/i.test(err.message) ||
    code.startsWith('ERR_SSL')
  ) {
    return new AgentError(
      AgentErrorCode.IDENTITY_REFUSED,
      `The hub refused this agent's certificate at the TLS handshake (${code || err.message}). It may be expired, revoked at the CA, or from another hub; re-enroll with a new bundle.`,
    );
  }
  if (/self.signed|unable to verify|UNABLE_TO_GET_ISSUER|CERT_/i.test(code + ' ' + err.message)) {
    return new AgentError(
      AgentErrorCode.HUB_NOT_TRUSTED,
      `The server at ${url} is not the hub this agent was enrolled with (${code || err.message}).`,
    );
  }
  return new AgentError(AgentErrorCode.HUB_UNREACHABLE, `Call to ${url} failed: ${err.message}`);
}

/**
 * One request over HTTPS with a JSON or binary body and answer. A new connection per call (no pooling), so a renewed
 * certificate is used from the very next call; the agent makes few calls, so the extra handshake costs nothing that
 * matters.
 */
export function hubRequest(
  baseUrl: string,
  method: 'GET' | 'POST',
  path: string,
  tls: TlsMaterial,
  options: HubRequestOptions = {},
): Promise<HubRawResponse> {
  const url = new URL(path, baseUrl).toString();
  const { body } = options;
  const payload =
    body === undefined ? undefined : 'json' in body ? Buffer.from(JSON.stringify(body.json)) : Buffer.from(body.bytes);
  const contentType =
    body === undefined
      ? undefined
      : 'json' in body
        ? 'application/json'
        : (body.contentType ?? 'application/octet-stream');
  const maxBytes = options.maxResponseBytes ?? Number.POSITIVE_INFINITY;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(explain(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }), url));
      return;
    }
    const req = httpsRequest(
      url,
      {
        method,
        agent: false,
        ...(tls.caCertificatePem ? { ca: [tls.caCertificatePem] } : {}),
        ...(tls.privateKeyPem ? { key: tls.privateKeyPem, cert: tls.certificatePem } : {}),
        rejectUnauthorized: !tls.insecureSkipVerify,
        minVersion: 'TLSv1.2',
        headers: {
          accept: options.accept ?? 'application/json',
          ...(payload ? { 'content-type': contentType, 'content-length': String(payload.length) } : {}),
        },
        timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        ...(options.signal ? { signal: options.signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let received = 0;
        res.on('data', (c: Buffer) => {
          received += c.length;
          if (received > maxBytes) {
            res.destroy();
            reject(
              new AgentError(
                AgentErrorCode.HUB_REFUSED,
                `The hub's answer to ${url} exceeds the expected ${maxBytes} bytes; refusing it.`,
              ),
            );
            return;
          }
          chunks.push(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            bytes: Buffer.concat(chunks),
            ...(res.headers['retry-after'] === undefined ? {} : { retryAfter: String(res.headers['retry-after']) }),
          }),
        );
        res.on('error', (err) => reject(explain(err, url)));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', (err) => reject(explain(err, url)));
    if (payload) req.write(payload);
    req.end();
  });
}

/** The parsed JSON of an answer, its text when it is not JSON (a proxy's error page), undefined when empty. */
export function jsonOf(res: HubRawResponse): unknown {
  const text = res.bytes.toString('utf8');
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    // a non-JSON answer: keep the text for the message
    return text;
  }
}

/** One JSON request over HTTPS (see hubRequest). */
export async function hubJson(
  baseUrl: string,
  method: 'GET' | 'POST',
  path: string,
  tls: TlsMaterial,
  body?: unknown,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<HubResponse> {
  const res = await hubRequest(baseUrl, method, path, tls, {
    ...(body === undefined ? {} : { body: { json: body } }),
    timeoutMs,
  });
  return { status: res.status, body: jsonOf(res) };
}

/** The hub's error message from a refused call. */
export function refusal(res: HubResponse, what: string): AgentError {
  const body = res.body as { message?: unknown; error?: unknown } | undefined;
  const message = typeof body?.message === 'string' ? body.message : `HTTP ${res.status}`;
  return new AgentError(AgentErrorCode.HUB_REFUSED, `The hub refused ${what}: ${message}`, res.status);
}
