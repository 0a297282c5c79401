import { BlockList, isIP } from 'node:net';

/** One entry of a trusted-proxy list: an address (`10.1.2.3`, `::1`) or a CIDR range (`10.0.0.0/8`, `fd00::/8`). */
export function proxyEntryProblem(entry: string): string | undefined {
  const [address, prefix, extra] = entry.split('/');
  if (extra !== undefined || !address) return `"${entry}" is not an address or a CIDR range`;
  const family = isIP(address);
  if (family === 0) return `"${entry}" is not an IP address (host names are not accepted: they can change)`;
  if (prefix === undefined) return undefined;
  const bits = Number(prefix);
  const max = family === 4 ? 32 : 128;
  if (!/^\d+$/.test(prefix) || bits > max) return `"${entry}": the prefix length must be 0 to ${max}`;
  return undefined;
}

/** IPv4 clients of a dual-stack socket show up as `::ffff:a.b.c.d`; compare them as the IPv4 address they are. */
function plainAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

/**
 * Decides which address a request comes from, believing `X-Forwarded-For` only from the listed proxies.
 *
 * Walks the chain from the TCP peer towards the client: while the current hop is a trusted proxy, the entry it
 * appended (the rightmost not yet read) is the next hop. The first untrusted hop is the client. Entries to the left of
 * it were written by the client itself and are never read, so a client cannot pick its own rate-limit bucket.
 */
export class ClientAddressResolver {
  private readonly trusted = new BlockList();
  private readonly empty: boolean;

  /** `entries` are validated by the configuration (`proxyEntryProblem`). */
  constructor(entries: readonly string[]) {
    this.empty = entries.length === 0;
    for (const entry of entries) {
      const [address, prefix] = entry.split('/') as [string, string | undefined];
      const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
      if (prefix === undefined) this.trusted.addAddress(address, family);
      else this.trusted.addSubnet(address, Number(prefix), family);
    }
  }

  private isTrusted(address: string): boolean {
    const family = isIP(address);
    return family !== 0 && this.trusted.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }

  /** The client's address for a connection from `peer` carrying `forwardedFor` (the raw header, if any). */
  resolve(peer: string | undefined, forwardedFor: string | string[] | undefined): string | undefined {
    if (peer === undefined) return undefined;
    let client = plainAddress(peer);
    if (this.empty || forwardedFor === undefined) return client;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
      .split(',')
      .map((h) => plainAddress(h.trim()))
      .reverse();
    for (const hop of hops) {
      if (!this.isTrusted(client)) break;
      // A trusted proxy that forwards something that is not an address: the proxy is the last hop we can name.
      if (isIP(hop) === 0) break;
      client = hop;
    }
    return client;
  }
}
