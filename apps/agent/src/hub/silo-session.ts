import { createCsr, generateKeyPair, parseCertificate, renewalDue } from '@tessera/pki';
import { CertificateGrant, SILO_API } from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';
import type { AgentState, LoadedIdentity } from '../state/agent-state';
import {
  hubJson,
  hubRequest,
  refusal,
  type HubRawResponse,
  type HubRequestOptions,
  type HubResponse,
} from './hub-client';
import type { HubClock } from './hub-clock';

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
    const res = await this.call('POST', SILO_API.renew, { csrPem });
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
