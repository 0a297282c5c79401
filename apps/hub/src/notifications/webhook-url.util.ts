/** Longest endpoint URL accepted. */
export const MAX_WEBHOOK_URL_LENGTH = 2048;

/**
 * Why a URL cannot be a webhook endpoint, or null. HTTPS only: the signature proves origin but not secrecy, and the
 * payloads name studies and silos. Plain http only to 127.0.0.1 and only when `allowLoopbackHttp` (tests, a receiver
 * on the hub's own machine). No credentials in the URL (they would show in the console and the audit log), no
 * fragment.
 */
export function webhookUrlProblem(raw: string, allowLoopbackHttp: boolean): string | null {
  if (raw.length > MAX_WEBHOOK_URL_LENGTH) return `url must be at most ${MAX_WEBHOOK_URL_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'url is not an absolute URL';
  }
  if (url.username || url.password) return 'url must not carry a user name or password';
  if (url.hash) return 'url must not have a #fragment';
  if (url.protocol === 'https:') return url.hostname ? null : 'url needs a host';
  if (url.protocol === 'http:') {
    if (url.hostname !== '127.0.0.1') return 'url must use https (plain http is accepted only for 127.0.0.1)';
    return allowLoopbackHttp
      ? null
      : 'url must use https: plain http to 127.0.0.1 needs TESSERA_WEBHOOK_ALLOW_LOOPBACK_HTTP=true on the hub';
  }
  return `url must use https, not ${url.protocol.replace(':', '')}`;
}

/** The URL as the audit log records it: the query string (which may hold a receiver's token) left out. */
export function auditableUrl(raw: string): string {
  const url = new URL(raw);
  return `${url.origin}${url.pathname}${url.search ? '?…' : ''}`;
}
