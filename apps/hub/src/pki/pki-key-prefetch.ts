import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_CA_RSA_MODULUS_BITS, DEFAULT_RSA_MODULUS_BITS, generateKeyPairAsync } from '@tessera/pki';
import type { HubConfig } from '../config/config.schema';

/**
 * The RSA keys a hub's first boot needs (its silo CA's and its own TLS server's), made on libuv's thread pool.
 *
 * Making them takes about two seconds of CPU (a 3072-bit and a 2048-bit prime search); on the event loop, after the
 * database was up, that was the longest step of a first boot. `startEarly` starts both while the embedded database
 * starts (a fresh data directory, no operator CA: a first boot for certain); HubPkiService takes them from here, or
 * has them made on demand when nothing was started (a restart, a server database, an operator CA), which costs nothing.
 */
export class PkiKeyPrefetch {
  private ca: Promise<string> | undefined;
  private server: Promise<string> | undefined;

  /** Starts both keys now when this boot is certainly a first boot of the embedded database. */
  static startEarly(config: HubConfig): PkiKeyPrefetch {
    const prefetch = new PkiKeyPrefetch();
    const freshEmbedded = !config.databaseUrl && !existsSync(join(config.dataDir, 'pgdata', 'PG_VERSION'));
    const operatorCa = Boolean(config.caCertificateFile && config.caKeyFile);
    if (freshEmbedded && !operatorCa) {
      prefetch.ca = privateKeyOf(DEFAULT_CA_RSA_MODULUS_BITS);
      prefetch.server = privateKeyOf(DEFAULT_RSA_MODULUS_BITS);
      // Not awaited until needed; a failure is reported where the key is taken.
      prefetch.ca.catch(() => undefined);
      prefetch.server.catch(() => undefined);
    }
    return prefetch;
  }

  /** Whether keys were started ahead (for tests and the boot log). */
  get started(): boolean {
    return this.ca !== undefined;
  }

  /** The CA's private key (PKCS#8 PEM): the one started early, else a new one. Each key is handed out once. */
  caKey(): Promise<string> {
    const key = this.ca ?? privateKeyOf(DEFAULT_CA_RSA_MODULUS_BITS);
    this.ca = undefined;
    return key;
  }

  /** The TLS server's private key (PKCS#8 PEM): the one started early, else a new one. Handed out once. */
  serverKey(): Promise<string> {
    const key = this.server ?? privateKeyOf(DEFAULT_RSA_MODULUS_BITS);
    this.server = undefined;
    return key;
  }
}

async function privateKeyOf(modulusBits: number): Promise<string> {
  return (await generateKeyPairAsync({ modulusBits })).privateKeyPem;
}
