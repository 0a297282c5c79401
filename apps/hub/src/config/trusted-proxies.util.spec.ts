import { describe, expect, it } from 'vitest';
import { ClientAddressResolver, proxyEntryProblem } from './trusted-proxies.util';
import { ConfigError, loadHubConfig } from './hub-config';

describe('ClientAddressResolver', () => {
  it('ignores X-Forwarded-For when no proxy is trusted: the TCP peer is the client', () => {
    const none = new ClientAddressResolver([]);
    expect(none.resolve('203.0.113.7', '198.51.100.1')).toBe('203.0.113.7');
    expect(none.resolve('::ffff:203.0.113.7', undefined)).toBe('203.0.113.7');
  });

  it('ignores the header from a peer outside the trusted ranges', () => {
    const r = new ClientAddressResolver(['10.0.0.0/8']);
    expect(r.resolve('127.0.0.1', '198.51.100.1')).toBe('127.0.0.1');
    expect(r.resolve('11.0.0.1', '198.51.100.1')).toBe('11.0.0.1');
  });

  it('takes the address a trusted proxy appended, never what the client wrote to the left of it', () => {
    const r = new ClientAddressResolver(['10.0.0.0/8', '127.0.0.1']);
    // The client sent "X-Forwarded-For: 1.2.3.4"; the proxy at 10.1.1.1 appended the real peer 198.51.100.9.
    expect(r.resolve('10.1.1.1', '1.2.3.4, 198.51.100.9')).toBe('198.51.100.9');
    // Two trusted hops (loopback sidecar, then an internal balancer) are walked through.
    expect(r.resolve('127.0.0.1', '1.2.3.4, 198.51.100.9, 10.2.2.2')).toBe('198.51.100.9');
    // Repeated headers count as one list.
    expect(r.resolve('10.1.1.1', ['1.2.3.4', '198.51.100.9'])).toBe('198.51.100.9');
  });

  it('stops at an entry that is not an address, naming the last hop it can trust', () => {
    const r = new ClientAddressResolver(['10.0.0.0/8']);
    expect(r.resolve('10.1.1.1', 'unknown')).toBe('10.1.1.1');
  });

  it('matches IPv6 ranges and single IPv6 addresses', () => {
    const r = new ClientAddressResolver(['fd00::/8', '::1']);
    expect(r.resolve('fd12::5', '2001:db8::1')).toBe('2001:db8::1');
    expect(r.resolve('::1', '2001:db8::2')).toBe('2001:db8::2');
    expect(r.resolve('fe80::1', '2001:db8::3')).toBe('fe80::1');
  });
});

describe('trusted proxy configuration', () => {
  it('accepts addresses and CIDR ranges and rejects anything else, naming the entry', () => {
    expect(proxyEntryProblem('10.0.0.0/8')).toBeUndefined();
    expect(proxyEntryProblem('::1')).toBeUndefined();
    expect(proxyEntryProblem('proxy.example.org')).toMatch(/not an IP address/);
    expect(proxyEntryProblem('10.0.0.0/33')).toMatch(/0 to 32/);
    expect(proxyEntryProblem('10.0.0.0/8/1')).toMatch(/not an address or a CIDR range/);
    const config = loadHubConfig({ TESSERA_TRUSTED_PROXIES: ' 127.0.0.1 , 10.0.0.0/8 ' });
    expect(config.trustedProxies).toEqual(['127.0.0.1', '10.0.0.0/8']);
    expect(config.enrollTrustedProxies).toEqual([]);
  });

  it('refuses the removed TESSERA_TRUST_PROXY=true, pointing at TESSERA_TRUSTED_PROXIES', () => {
    let refused: unknown;
    try {
      loadHubConfig({ TESSERA_TRUST_PROXY: 'true', TESSERA_ENROLL_TRUSTED_PROXIES: 'example.org' });
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(ConfigError);
    const problems = (refused as ConfigError).problems;
    expect(problems.map((p) => p.variable).sort()).toEqual(['TESSERA_ENROLL_TRUSTED_PROXIES', 'TESSERA_TRUST_PROXY']);
    expect(problems.find((p) => p.variable === 'TESSERA_TRUST_PROXY')!.message).toContain('TESSERA_TRUSTED_PROXIES');
    expect(loadHubConfig({ TESSERA_TRUST_PROXY: 'false' }).trustedProxies).toEqual([]);
  });
});
