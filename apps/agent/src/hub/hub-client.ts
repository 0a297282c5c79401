import { createHash, X509Certificate } from 'node:crypto';
import { Agent as HttpsAgent, request as httpsRequest, type AgentOptions, type RequestOptions } from 'node:https';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { checkServerIdentity, connect as tlsConnect, type TLSSocket } from 'node:tls';
import { MIN_RSA_MODULUS_BITS, parseCertificate } from '@tessera/pki';
import { hubErrorCodeOf } from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';
import { agentHeaders } from './agent-software';
import { formatSkew } from './hub-clock';

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
  /** The hub's Date header (its clock, to the second), when it sent one. */
  date?: string;
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
  /** The Date header: the hub's clock when it answered, to the second (RFC 9110 section 6.6.1). */
  date?: string;
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
 * How far outside its validity window, by this host's clock, the hub's certificate (or the pinned CA's) may lie and
 * still be accepted when everything else about it verifies against the pinned CA: 24 hours (ms). It covers a host
 * clock hours off (a wrong time zone, a lost battery-backed clock) without keeping a certificate usable for long after
 * it expired; the hub renews its own certificate long before that. Beyond it the agent says that this host's clock
 * appears to be off, and by how much. The hub judges the agent's certificate by its own clock (issued with notBefore
 * five minutes back, @tessera/pki CLOCK_SKEW_ALLOWANCE_MS), so this host's clock does not matter there.
 */
export const CERTIFICATE_CLOCK_TOLERANCE_MS = 24 * 60 * 60 * 1000;

/** OpenSSL's verdicts that only the clock decides; every other one refuses the hub. */
const CLOCK_VERDICTS: readonly string[] = ['CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED'];

/** id-kp-serverAuth (RFC 5280 section 4.2.1.12). */
const SERVER_AUTH_OID = '1.3.6.1.5.5.7.3.1';

function notTheHub(url: string, reason: string): AgentError {
  return new AgentError(
    AgentErrorCode.HUB_NOT_TRUSTED,
    `The server at ${url} is not the hub this agent was enrolled with (${reason}).`,
  );
}

/** The certificates of a pinned CA bundle (one or more PEM blocks). */
function pinnedCertificates(caPem: string): X509Certificate[] {
  return (caPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (pem) => new X509Certificate(pem),
  );
}

function rsaKeyTooSmall(cert: X509Certificate): boolean {
  const key = cert.publicKey;
  return key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_MODULUS_BITS;
}

/** What the hub presented at a handshake whose certificate OpenSSL judged only by the clock. */
export interface PresentedHubCertificate {
  /** The server's certificate. */
  leaf: X509Certificate;
  /** The host the agent connected to: a DNS name or an IP literal (no brackets). */
  host: string;
  /** checkServerIdentity's verdict on the host, null when the certificate names it. */
  hostMismatch: Error | null;
}

/**
 * Verifies, without the clock, a hub certificate that OpenSSL refused as "not yet valid" or "expired", and then
 * judges its validity window (and the CA's) against this host's clock with CERTIFICATE_CLOCK_TOLERANCE_MS.
 *
 * OpenSSL keeps only the last of several verification errors, and it checks validity periods last (after the path,
 * the purpose and, certificate by certificate, the signature): a server certificate from another CA that is also not
 * yet valid comes out as CERT_NOT_YET_VALID alone, and so can a wrong purpose or host name. Hence everything but the
 * time is checked again here, at least as strictly as for an ordinary handshake: the certificate
 * must be issued and signed directly by a pinned CA certificate that is a CA (Tessera's hub certificates have no
 * intermediate), be an end entity for id-kp-serverAuth with an RSA key of at least MIN_RSA_MODULUS_BITS, and name
 * the host. Only then may the clock be blamed. Returns null to accept, else the error to refuse with.
 */
export function refusalUnderClockSkew(
  presented: PresentedHubCertificate,
  caPem: string,
  now: Date,
  url: string,
  toleranceMs = CERTIFICATE_CLOCK_TOLERANCE_MS,
): AgentError | null {
  const { leaf } = presented;
  const issuer = pinnedCertificates(caPem).find((ca) => ca.ca && leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
  if (issuer === undefined) return notTheHub(url, 'its certificate is not issued by the pinned hub CA');
  if (leaf.ca || !(leaf.keyUsage ?? []).includes(SERVER_AUTH_OID)) {
    return notTheHub(url, 'its certificate is not a TLS server certificate');
  }
  if (rsaKeyTooSmall(leaf) || rsaKeyTooSmall(issuer)) {
    return notTheHub(url, `its certificate chain has an RSA key shorter than ${MIN_RSA_MODULUS_BITS} bits`);
  }
  if (presented.hostMismatch !== null) {
    return new AgentError(
      AgentErrorCode.HUB_NOT_TRUSTED,
      `The hub's certificate does not name ${presented.host}: ${presented.hostMismatch.message}`,
    );
  }
  for (const [what, cert] of [
    ["the hub's certificate", leaf],
    ["the hub's CA certificate", issuer],
  ] as const) {
    const { notBefore, notAfter } = parseCertificate(cert.toString());
    const window = `${what} is valid from ${notBefore.toISOString()} to ${notAfter.toISOString()} and this host's clock reads ${now.toISOString()}`;
    const early = notBefore.getTime() - now.getTime();
    const late = now.getTime() - notAfter.getTime();
    if (early > toleranceMs) {
      return new AgentError(
        AgentErrorCode.HUB_NOT_TRUSTED,
        `This host's clock appears to be at least ${formatSkew(early)} behind: ${window}, beyond the tolerance of ${formatSkew(toleranceMs)}. The certificate is otherwise the enrolled hub's. Set this host's time right (NTP); the agent tries again.`,
      );
    }
    if (late > toleranceMs) {
      return new AgentError(
        AgentErrorCode.HUB_NOT_TRUSTED,
        `This host's clock appears to be at least ${formatSkew(late)} ahead, or the hub's certificate was not renewed: ${window}, beyond the tolerance of ${formatSkew(toleranceMs)}. Check this host's time (NTP) first; if it is right, ask the hub administrator to renew the hub's certificate.`,
      );
    }
  }
  return null;
}

/**
 * Decides, after the handshake and before anything is sent, whether the peer is the enrolled hub. Node has verified
 * the chain against the pinned CA and the host name exactly as with rejectUnauthorized (socket.authorized); only its
 * clock verdicts get a second look (refusalUnderClockSkew). Null to go ahead.
 */
function peerRefusal(socket: TLSSocket, host: string, caPem: string, url: string): AgentError | null {
  if (socket.authorized) return null;
  const verdict = String(socket.authorizationError ?? 'unknown verification error');
  // Node's own host name check (RFC 6125), run again for its message: Node keeps only the code.
  const hostMismatch = checkServerIdentity(host, socket.getPeerCertificate()) ?? null;
  if (!CLOCK_VERDICTS.includes(verdict)) {
    if (verdict === 'ERR_TLS_CERT_ALTNAME_INVALID' && hostMismatch !== null) return explain(hostMismatch, url);
    return notTheHub(url, verdict);
  }
  const leaf = socket.getPeerX509Certificate();
  if (leaf === undefined) return notTheHub(url, 'it presented no certificate');
  return refusalUnderClockSkew({ leaf, host, hostMismatch }, caPem, new Date(), url);
}

/** A TLS connection to the hub, verified and ready for HTTP; `release` ends the connect phase's own error handling. */
interface HubConnection {
  socket: TLSSocket;
  release: () => void;
  /** Why the connection failed after it was verified (before HTTP took it over), if it did. */
  failure: () => AgentError | undefined;
}

/**
 * Opens the TLS connection and decides whether the peer is the hub (peerRefusal) before HTTP may write a byte on it.
 * rejectUnauthorized is off only so that the decision is made here, where a clock verdict can be told from a wrong
 * certificate; every refusal destroys the socket before anything is sent.
 */
function connectToHub(
  url: URL,
  tls: TlsMaterial,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<HubConnection> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const where = url.toString();
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host,
      port: url.port === '' ? 443 : Number(url.port),
      // SNI carries host names only (RFC 6066 section 3).
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ...(tls.caCertificatePem ? { ca: [tls.caCertificatePem] } : {}),
      ...(tls.privateKeyPem ? { key: tls.privateKeyPem, cert: tls.certificatePem } : {}),
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    });
    const onError = (err: NodeJS.ErrnoException) => fail(explain(err, where));
    const onAbort = () => fail(explain(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }), where));
    const onTimeout = () => fail(explain(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }), where));
    const endConnectPhase = () => {
      socket.setTimeout(0);
      socket.off('timeout', onTimeout);
      signal?.removeEventListener('abort', onAbort);
    };
    let failure: AgentError | undefined;
    const fail = (err: AgentError) => {
      failure = err;
      endConnectPhase();
      socket.off('error', onError);
      socket.destroy();
      reject(err);
    };
    socket.on('error', onError);
    socket.setTimeout(timeoutMs);
    socket.on('timeout', onTimeout);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('secureConnect', () => {
      const refusal = tls.insecureSkipVerify ? null : peerRefusal(socket, host, tls.caCertificatePem ?? '', where);
      if (refusal !== null) return fail(refusal);
      endConnectPhase();
      resolve({ socket, release: () => socket.off('error', onError), failure: () => failure });
    });
  });
}

/** Idle verified connections kept per identity; the hub closes idle ones after its keep-alive timeout (5 s). */
const MAX_IDLE_CONNECTIONS = 2;
/** An idle kept connection is closed after this long (below the hub's keep-alive timeout of 5 s). */
const IDLE_CONNECTION_MS = 4_000;
/** Identities (CA, certificate) whose connections are kept; an older one's are closed (a renewed certificate). */
const MAX_IDENTITIES = 2;

/**
 * Keeps verified connections to the hub open between calls (HTTP keep-alive), so an agent makes one TLS handshake
 * where it made one per call (issue 21, item 3). Every new connection is made and checked by connectToHub (pinned CA,
 * host name, clock verdict); a reused one is the same verified socket. The hub still judges the client certificate on
 * every request (revocation and suspension are per request, not per connection). Pools are per identity: a renewed
 * certificate gets a fresh pool at once, and the previous identity's connections are closed.
 */
class VerifiedHubAgent extends HttpsAgent {
  constructor(
    private readonly tls: TlsMaterial,
    options: AgentOptions,
  ) {
    super(options);
  }

  override createConnection(
    options: RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): undefined {
    if (!callback) throw new Error('VerifiedHubAgent connects asynchronously: the HTTP client passes a callback');
    // Connecting and checking the hub get the default call timeout; each request then sets its own (a long poll's).
    const host = (options.host ?? 'localhost').replace(/^\[(.*)\]$/, '$1');
    const url = new URL(`https://${isIP(host) === 6 ? `[${host}]` : host}:${options.port ?? 443}/`);
    connectToHub(url, this.tls, DEFAULT_TIMEOUT_MS, undefined).then(
      (connection) => {
        connection.release();
        callback(null, connection.socket);
      },
      (err: Error) => callback(err, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

const agents = new Map<string, VerifiedHubAgent>();

function identityKey(tls: TlsMaterial): string {
  return createHash('sha256')
    .update(JSON.stringify([tls.caCertificatePem ?? '', tls.certificatePem ?? '', tls.insecureSkipVerify === true]))
    .digest('hex');
}

function agentFor(tls: TlsMaterial): VerifiedHubAgent {
  const key = identityKey(tls);
  let agent = agents.get(key);
  if (agent) {
    agents.delete(key);
  } else {
    // Idle sockets are unreferenced: a CLI command exits when its work is done, whatever the pool holds.
    agent = new VerifiedHubAgent(tls, {
      keepAlive: true,
      maxFreeSockets: MAX_IDLE_CONNECTIONS,
      scheduling: 'lifo',
      // An idle connection is closed here before the hub's keep-alive timeout (5 s) closes it there, so a call
      // seldom meets a connection the hub is closing at that instant.
      timeout: IDLE_CONNECTION_MS,
    });
  }
  agents.set(key, agent); // most recently used last
  while (agents.size > MAX_IDENTITIES) {
    const [oldest, stale] = agents.entries().next().value as [string, VerifiedHubAgent];
    agents.delete(oldest);
    stale.destroy();
  }
  return agent;
}

/** Closes every kept connection (tests; a daemon that stops). */
export function closeHubConnections(): void {
  for (const agent of agents.values()) agent.destroy();
  agents.clear();
}

/**
 * One request over HTTPS with a JSON or binary body and answer, on a kept connection when one is idle (see
 * VerifiedHubAgent), else on a new one that connectToHub verifies. The hub is trusted through the pinned CA only.
 */
export async function hubRequest(
  baseUrl: string,
  method: 'GET' | 'POST',
  path: string,
  tls: TlsMaterial,
  options: HubRequestOptions = {},
): Promise<HubRawResponse> {
  const target = new URL(path, baseUrl);
  const url = target.toString();
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
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (options.signal?.aborted) throw explain(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }), url);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      target,
      {
        method,
        agent: agentFor(tls),
        port: target.port === '' ? 443 : Number(target.port),
        defaultPort: 443,
        headers: {
          // The agent's version, platform and current task, on every call (the hub's silo health).
          ...agentHeaders(),
          accept: options.accept ?? 'application/json',
          ...(payload ? { 'content-type': contentType, 'content-length': String(payload.length) } : {}),
        },
        timeout: timeoutMs,
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
            ...(res.headers.date === undefined ? {} : { date: res.headers.date }),
          }),
        );
        res.on('error', (err) => reject(explain(err, url)));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    // A connection refused while it was made and checked (connectToHub) arrives already explained.
    req.on('error', (err) => reject(err instanceof AgentError ? err : explain(err, url)));
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
  return { status: res.status, body: jsonOf(res), ...(res.date === undefined ? {} : { date: res.date }) };
}

/**
 * The hub's error code in an answer's body (`error`, e.g. ROUND_CLOSED): a code of the contract (HubErrorCode of
 * @tessera/protocol), or one a newer hub added, kept as named so logs and the release store show it. Undefined when
 * the body is not the hub's (a proxy's page).
 */
export function hubCodeOf(body: unknown): string | undefined {
  const known = hubErrorCodeOf(body);
  if (known !== undefined) return known;
  const named = typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined;
  return typeof named === 'string' && /^[A-Z_]{1,64}$/.test(named) ? named : undefined;
}

/** The hub's error message from a refused call, with its code for callers to branch on. */
export function refusal(res: HubResponse, what: string): AgentError {
  const body = res.body as { message?: unknown } | undefined;
  const message = typeof body?.message === 'string' ? body.message : `HTTP ${res.status}`;
  return new AgentError(
    AgentErrorCode.HUB_REFUSED,
    `The hub refused ${what}: ${message}`,
    res.status,
    hubCodeOf(res.body),
  );
}
