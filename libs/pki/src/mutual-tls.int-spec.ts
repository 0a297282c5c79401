// A real TLS 1.3 handshake on 127.0.0.1 with certificates from this library: the hub's silo listener configuration
// (requestCert + rejectUnauthorized + the silo CA) must admit exactly the clients that CA issued.
import { once } from 'node:events';
import { AddressInfo } from 'node:net';
import { checkServerIdentity, connect, createServer, Server, TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from './certificate-authority';
import { certificatePemFromDer, parseCertificate } from './certificate-inspector';
import { issueServerCertificate, issueSiloCertificate } from './certificate-issuer';
import { createCsr } from './csr';
import { generateKeyPair, KeyPairPem } from './key-pair';
import { buildCa, newSiloId, selfSignedSiloCertificate } from './pki-fixtures.test-util';

interface HandshakeOutcome {
  /** What the server answered after reading the peer certificate, or null when the connection failed. */
  reply: string | null;
  clientError: string | null;
}

describe('mutual TLS with issued certificates', () => {
  let ca: CertificateAuthority;
  let siloKey: KeyPairPem;
  // `guard` is the hub's silo listener; `observer` is the same configuration with rejectUnauthorized off, used only
  // to read OpenSSL's verdict (Node's guard destroys refused sockets without saying why).
  let guard: Server;
  let observer: Server;
  const serverRejections: string[] = [];

  function startServer(serverCertificate: { privateKeyPem: string; certificatePem: string }, reject: boolean): Server {
    const server = createServer(
      {
        key: serverCertificate.privateKeyPem,
        cert: serverCertificate.certificatePem,
        ca: [ca.certificatePem],
        requestCert: true,
        rejectUnauthorized: reject,
        minVersion: 'TLSv1.3',
      },
      (socket: TLSSocket) => {
        // The silo id comes from the verified peer certificate, never from anything the client says.
        const der = socket.getPeerCertificate(false).raw;
        const siloId = parseCertificate(certificatePemFromDer(der)).siloId;
        const verdict = socket.authorized ? 'authorized' : `refused:${String(socket.authorizationError)}`;
        socket.end(`hello ${siloId ?? 'nobody'}; ${verdict}`);
      },
    );
    server.listen(0, '127.0.0.1');
    return server;
  }

  beforeAll(async () => {
    ca = buildCa();
    siloKey = generateKeyPair();
    const serverCertificate = issueServerCertificate({ ca, hostnames: ['localhost'], ips: ['127.0.0.1'] });
    guard = startServer(serverCertificate, true);
    guard.on('tlsClientError', (error) => serverRejections.push(error.message));
    observer = startServer(serverCertificate, false);
    await Promise.all([once(guard, 'listening'), once(observer, 'listening')]);
  });

  afterAll(async () => {
    guard.close();
    observer.close();
    await Promise.all([once(guard, 'close'), once(observer, 'close')]);
  });

  async function handshake(
    client: { key: string; cert: string },
    host = '127.0.0.1',
    server: Server = guard,
  ): Promise<HandshakeOutcome> {
    const socket = connect({
      host: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      servername: host === '127.0.0.1' ? undefined : host,
      ca: [ca.certificatePem],
      key: client.key,
      cert: client.cert,
      // Check the name the test means (IP or DNS) rather than the socket address.
      checkServerIdentity: (_name, cert) => checkServerIdentity(host, cert),
    });
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      reply += chunk;
    });
    let clientError: string | null = null;
    socket.on('error', (error: Error) => {
      clientError = error.message;
    });
    // In TLS 1.3 the client finishes its side before the server has judged the client certificate, so a refusal
    // may surface as an alert, a reset or just a close without data: wait for the close and report what arrived.
    // (events.once would reject on the 'error' event; the outcome is only known at 'close'.)
    await new Promise<void>((resolve) => socket.on('close', () => resolve()));
    return { reply: reply === '' ? null : reply, clientError };
  }

  it('admits a silo certificate from the CA and the server sees its silo id (IP and host name)', async () => {
    const siloId = newSiloId();
    const csr = createCsr({ privateKeyPem: siloKey.privateKeyPem, siloId });
    const issued = issueSiloCertificate({ ca, csr, siloId });
    const client = { key: siloKey.privateKeyPem, cert: issued.certificatePem };

    expect(await handshake(client)).toEqual({ reply: `hello ${siloId}; authorized`, clientError: null });
    expect(await handshake(client, 'localhost')).toEqual({ reply: `hello ${siloId}; authorized`, clientError: null });
  });

  it('refuses a silo certificate from another CA', async () => {
    const siloId = newSiloId();
    const otherCa = buildCa({ commonName: 'Tessera Test Silo CA', key: generateKeyPair() });
    const csr = createCsr({ privateKeyPem: siloKey.privateKeyPem, siloId });
    const foreign = issueSiloCertificate({ ca: otherCa, csr, siloId });
    const before = serverRejections.length;

    const client = { key: siloKey.privateKeyPem, cert: foreign.certificatePem };
    const outcome = await handshake(client);
    expect(outcome.reply).toBeNull();
    // Node's server destroys an unauthorized socket without surfacing OpenSSL's reason, so the server-side record is
    // the failed handshake itself; the connection handler (which would reply) never ran.
    expect(serverRejections.length).toBe(before + 1);
    // Same issuer name as the real CA but another key (so another authority key id): OpenSSL finds no issuer for it.
    expect((await handshake(client, '127.0.0.1', observer)).reply).toBe(
      `hello ${siloId}; refused:UNABLE_TO_VERIFY_LEAF_SIGNATURE`,
    );
  });

  it('refuses a self-signed certificate that claims a silo id', async () => {
    const before = serverRejections.length;
    const siloId = newSiloId();
    const client = { key: siloKey.privateKeyPem, cert: selfSignedSiloCertificate(siloKey, siloId) };
    const outcome = await handshake(client);
    expect(outcome.reply).toBeNull();
    expect(serverRejections.length).toBe(before + 1);
    expect((await handshake(client, '127.0.0.1', observer)).reply).toBe(
      `hello ${siloId}; refused:DEPTH_ZERO_SELF_SIGNED_CERT`,
    );
  });

  it('lets the client refuse a server whose name is not in the certificate', async () => {
    const siloId = newSiloId();
    const csr = createCsr({ privateKeyPem: siloKey.privateKeyPem, siloId });
    const issued = issueSiloCertificate({ ca, csr, siloId });
    const outcome = await handshake({ key: siloKey.privateKeyPem, cert: issued.certificatePem }, 'hub.example.org');
    expect(outcome.reply).toBeNull();
    expect(outcome.clientError).toMatch(/Hostname\/IP does not match/);
  });
});
