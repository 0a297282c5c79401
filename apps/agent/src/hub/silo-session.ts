import { createCsr, generateKeyPair, parseCertificate, renewalDue } from '@tessera/pki';
import { CertificateGrant, type HubApiPaths } from '@tessera/protocol';
import createClient, { type Client } from 'openapi-fetch';
import { AgentError, AgentErrorCode } from '../agent.error';
import type { AgentState, LoadedIdentity } from '../state/agent-state';
import {
  hubJson,
  hubRequest,
  jsonOf,
  refusal,
  type HubRawResponse,
  type HubRequestOptions,
  type HubResponse,
} from './hub-client';
import type { HubClock } from './hub-clock';

/** The hub's routes as openapi-fetch types them from the hub's OpenAPI document (libs/protocol hub-api.generated.ts). */
export type HubApi = Client<HubApiPaths>;

/** Options of one typed call: the socket timeout and the abort signal of SiloSession.request. */
export type TypedCallOptions = Pick<HubRequestOptions, 'timeoutMs' | 'signal' | 'maxResponseBytes'>;

/**
 * openapi-fetch builds a Request, which needs an absolute URL; only its path and query are used: forward() sends them
 * to the hub's silo URL over the session's mutual TLS.
 */
const REQUEST_ORIGIN = 'https://hub.invalid';

/** The raw answer behind each Response forward() made, for callers that read its Retry-After and Date. */
const rawAnswers = new WeakMap<Response, HubRawResponse>();

/** The raw answer (status, bytes, Retry-After, Date) of a typed call's Response. */
export function rawAnswerOf(response: Response): HubRawResponse {
  const raw = rawAnswers.get(response);
  if (raw === undefined) throw new Error('not an answer of SiloSession.api');
  return raw;
}

/**
 * The agent's authenticated channel to the hub: every call over mutual TLS with the current certificate,
 * trusting only the pinned CA. Renews the certificate when a third of its lifetime remains, with a fresh key,
 * without a restart.
 */
export class SiloSession {
  private identity: LoadedIdentity;

  constructor(
    private readonly state: AgentState,
    private readonly clock: () => Date = () => new Date(),
    /** Told the hub's Date header of every answer, to notice a host clock that is off (optional). */
    private readonly hubClock?: HubClock,
  ) {
    this.identity = state.loadIdentity();
  }

  /**
   * The hub's JSON routes, typed by its OpenAPI document: paths, parameters and bodies are checked at compile time.
   * Calls travel through request() (mutual TLS, the pinned CA, kept connections, the hub's clock); pass
   * `parseAs: 'stream'` and read the answer with rawAnswerOf, so the caller's own checks (its zod schemas, its
   * refusal rules) stay as they are. Binary uploads and downloads use request() directly.
   */
  readonly api: HubApi = createClient<HubApiPaths>({ baseUrl: REQUEST_ORIGIN, fetch: (r) => this.forward(r) });

  /** A typed client whose calls use these options (a long poll's timeout, an abort signal). */
  apiWith(options: TypedCallOptions): HubApi {
    return createClient<HubApiPaths>({ baseUrl: REQUEST_ORIGIN, fetch: (r) => this.forward(r, options) });
  }

  private async forward(request: Request, options: TypedCallOptions = {}): Promise<Response> {
    const url = new URL(request.url);
    const text = request.body === null ? '' : await request.text();
    const raw = await this.request(request.method as 'GET' | 'POST', `${url.pathname}${url.search}`, {
      ...options,
      ...(text === '' ? {} : { body: { json: JSON.parse(text) as unknown } }),
    });
    const empty = raw.status === 204 || raw.status === 205 || raw.status === 304;
    const response = new Response(empty ? null : raw.bytes, {
      status: raw.status,
      headers: raw.contentType ? { 'content-type': raw.contentType } : {},
    });
    rawAnswers.set(response, raw);
    return response;
  }

  get siloId(): string {
    return this.identity.record.siloId;
  }

  get current(): LoadedIdentity {
    return this.identity;
  }

  async call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<HubResponse> {
    const { record, privateKeyPem, certificatePem, caCertificatePem } = this.identity;
    const res = await hubJson(
      record.hubSiloUrl,
      method,
      path,
      { caCertificatePem, privateKeyPem, certificatePem },
      body,
    );
    this.hubClock?.observeDateHeader(res.date, this.clock().getTime());
    return res;
  }

  /** A call with a binary or JSON body and a raw answer (model downloads, update uploads, long polls). */
  async request(method: 'GET' | 'POST', path: string, options: HubRequestOptions = {}): Promise<HubRawResponse> {
    const { record, privateKeyPem, certificatePem, caCertificatePem } = this.identity;
    const res = await hubRequest(
      record.hubSiloUrl,
      method,
      path,
      { caCertificatePem, privateKeyPem, certificatePem },
      options,
    );
    this.hubClock?.observeDateHeader(res.date, this.clock().getTime());
    return res;
  }

  renewalDue(): boolean {
    return renewalDue(parseCertificate(this.identity.certificatePem), this.clock());
  }

  /** Renews when due (or when forced); returns whether a new certificate was obtained. */
  async renewIfDue(force = false): Promise<boolean> {
    if (!force && !this.renewalDue()) return false;
    const keys = generateKeyPair();
    const csrPem = createCsr({ privateKeyPem: keys.privateKeyPem, siloId: this.siloId });
    const { response } = await this.api.POST('/silo/v1/certificate/renew', { body: { csrPem }, parseAs: 'stream' });
    const raw = rawAnswerOf(response);
    const res: HubResponse = { status: raw.status, body: jsonOf(raw) };
    if (res.status !== 200) throw refusal(res, 'the certificate renewal');
    const grant = CertificateGrant.safeParse(res.body);
    if (!grant.success || grant.data.siloId !== this.siloId) {
      throw new AgentError(
        AgentErrorCode.HUB_REFUSED,
        'The hub answered the renewal with an invalid certificate grant.',
      );
    }
    const now = this.clock().toISOString();
    const { keyFile: _k, certificateFile: _c, ...previous } = this.identity.record;
    this.state.saveIdentity(
      { ...previous, serial: grant.data.serial, notAfter: grant.data.notAfter, renewedAt: now },
      keys.privateKeyPem,
      grant.data.certificatePem,
      this.identity.caCertificatePem,
    );
    this.identity = this.state.loadIdentity();
    return true;
  }
}
