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

/** Messages for the TLS failures an operator meets, in words they can act on. */
function explain(err: NodeJS.ErrnoException, url: string): AgentError {
  const code = err.code ?? '';
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET'].includes(code)) {
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
      AgentErrorCode.HUB_REFUSED,
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
 * One JSON request over HTTPS. A new connection per call (no pooling), so a renewed certificate is used from the
 * very next call; the agent makes few calls, so the extra handshake costs nothing that matters.
 */
export function hubJson(
  baseUrl: string,
  method: 'GET' | 'POST',
  path: string,
  tls: TlsMaterial,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<HubResponse> {
  const url = new URL(path, baseUrl).toString();
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
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
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // a non-JSON answer (a proxy's error page): keep the text for the message
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', (err) => reject(explain(err, url)));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', (err) => reject(explain(err, url)));
    if (payload) req.write(payload);
    req.end();
  });
}

/** The hub's error message from a refused call. */
export function refusal(res: HubResponse, what: string): AgentError {
  const body = res.body as { message?: unknown; error?: unknown } | undefined;
  const message = typeof body?.message === 'string' ? body.message : `HTTP ${res.status}`;
  return new AgentError(AgentErrorCode.HUB_REFUSED, `The hub refused ${what}: ${message}`);
}
