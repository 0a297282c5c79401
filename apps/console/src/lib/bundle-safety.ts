/**
 * Addresses in an enrollment bundle that an agent on another machine cannot reach: loopback (127.0.0.0/8, ::1,
 * localhost and *.localhost) and the unspecified address (0.0.0.0, ::), which a hub writes into bundles when it
 * listens on its defaults and TESSERA_PUBLIC_SILO_URL / TESSERA_PUBLIC_ENROLL_URL are not set. On the silo's host
 * such an address means the silo's own machine, not the hub.
 */
export interface UnreachableAddress {
  /** Which listener of the hub the bundle names. */
  listener: 'enrollment' | 'silo';
  url: string;
  host: string;
}

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) return true;
  if (host === '0.0.0.0') return true;
  if (host === '::1' || host === '::' || host === '0:0:0:0:0:0:0:1' || host === '0:0:0:0:0:0:0:0') return true;
  // IPv4-mapped IPv6 (::ffff:127.0.0.1, which URL parsing writes as ::ffff:7f00:1).
  if (/^::ffff:(127\.|7f[0-9a-f]{2}:)/.test(host)) return true;
  return false;
}

/** The bundle's URLs that point at a loopback or unspecified address (empty: none does). */
export function unreachableAddresses(bundle: { enrollUrl: string; hubSiloUrl: string }): UnreachableAddress[] {
  const out: UnreachableAddress[] = [];
  const check = (listener: UnreachableAddress['listener'], url: string) => {
    let host: string;
    try {
      host = new URL(url).hostname;
    } catch {
      return;
    }
    if (isLoopbackHost(host)) out.push({ listener, url, host });
  };
  check('enrollment', bundle.enrollUrl);
  check('silo', bundle.hubSiloUrl);
  return out;
}
