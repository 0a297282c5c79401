import 'reflect-metadata';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { NotFoundException, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import { Logger } from 'nestjs-pino';
import pino, { type Logger as RootLogger } from 'pino';
import { AccountsService } from './accounts/accounts.service';
import { AppModule } from './app.module';
import { AuditTrail } from './audit/audit-trail';
import { isListenerMarked, listenerOf, markListener, type Listener } from './auth/listener';
import { HubPkiService } from './pki/hub-pki.service';
import { PkiKeyPrefetch } from './pki/pki-key-prefetch';
import { SilosService } from './silos/silos.service';
import { resolveSessionKey } from './sessions/session-key';
import { correlationIdOf, errorBodyFor, sendError } from './common/global-exception.filter';
import { refuseHostileInput } from './common/input-guard.middleware';
import { correlationIdFor, hubLogger, requestLogging } from './common/logging';
import { serveSharedJson } from './common/shared-json';
import { hubValidationPipe } from './common/validation';
import type { HubConfig } from './config/config.schema';
import { ClientAddressResolver } from './config/trusted-proxies.util';
import { isSharedRead } from './database/read-cache';
import { externalPostgres, startEmbeddedPostgres, type DatabaseEndpoint } from './database/embedded-postgres';
import { runMigrations, schemaKey } from './database/migrate';
import { MetricsService } from './metrics/metrics.service';
import { buildOpenApiDocument } from './api-document/openapi-document';

/** The OpenAPI UI; also the prefix of its JSON (`/openapi.json`) and YAML (`-yaml`) documents. */
export const API_DOCS_PATH = 'api/docs';

export interface RunningHub {
  readonly app: INestApplication;
  readonly config: HubConfig;
  readonly database: DatabaseEndpoint;
  /** Base URL of the console/API listener, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  /** Base URL of the silo listener (mutual TLS). */
  readonly siloUrl: string;
  /** Base URL of the enrollment listener (TLS, no client certificate). */
  readonly enrollUrl: string;
  /** Graceful stop: refuse new connections, let in-flight requests finish (bounded), close the database. */
  close(): Promise<void>;
}

export async function openDatabase(config: HubConfig): Promise<DatabaseEndpoint> {
  return config.databaseUrl
    ? externalPostgres(config.databaseUrl, config.databasePoolSize)
    : startEmbeddedPostgres(config.dataDir, { schemaKey: schemaKey() });
}

/** Boots the hub: database (embedded or server), migrations, first administrator, listeners. */
export async function startHub(config: HubConfig, options: { logger?: boolean } = {}): Promise<RunningHub> {
  // On a first boot, the CA and server keys are made on the thread pool while the database starts.
  const pkiKeys = PkiKeyPrefetch.startEarly(config);
  const database = await openDatabase(config);
  // Asynchronous: a slow reader of stdout must not stop the event loop (common/logging.ts); flushed when the hub stops.
  const logDestination = pino.destination({ dest: 1, sync: false });
  const logger = hubLogger(config, logDestination);
  const flushLog = () => flushLogLines(logDestination);
  let app: NestExpressApplication | undefined;
  const extraServers: Server[] = [];
  try {
    if (config.runMigrations) {
      const applied = await runMigrations(database);
      // A new embedded cluster just migrated from empty: kept, so the next new one starts migrated (ADR 0002).
      if (database.kind === 'embedded' && database.origin === 'empty' && applied.length > 0) {
        const failed = await database.saveSchemaTemplate();
        // Best effort (a read-only install keeps no cache): said for whoever debugs a slow first start.
        if (failed !== null) logger.debug(`the migrated new database was not kept as a template: ${failed}`);
      }
    }
    const sessionKey = resolveSessionKey(config.jwtSecret, config.dataDir);
    app = await NestFactory.create<NestExpressApplication>(
      AppModule.forRoot({ config, database, sessionKey, pkiKeys, logger }),
      {
        bodyParser: false,
        bufferLogs: true,
        logger: options.logger === false ? false : undefined,
      },
    );
    app.useLogger(app.get(Logger));
    configureHttp(app, config, logger);
    await app.init();
    await app.get(AccountsService).ensureFirstAdmin(config.adminUsername, config.adminPassword);
    const pki = app.get(HubPkiService);
    await pki.ensureReady();
    const handler = app.getHttpAdapter().getInstance() as (req: IncomingMessage, res: ServerResponse) => void;
    const credentials = pki.serverCredentials();
    const tlsBase = {
      key: credentials.privateKeyPem,
      cert: credentials.certificatePem,
      minVersion: 'TLSv1.2',
    } as const;
    // Agents only: TLS refuses any client certificate not signed by the silo CA (and any connection without one);
    // the AccessGuard then maps the certificate to a silo and checks revocation and suspension on every request.
    const siloServer = createHttpsServer(
      { ...tlsBase, ca: [credentials.caCertificatePem], requestCert: true, rejectUnauthorized: true },
      listenerHandler('silo', handler),
    );
    const enrollServer = createHttpsServer(tlsBase, listenerHandler('enroll', handler));
    extraServers.push(siloServer, enrollServer);
    const metrics = app.get(MetricsService);
    siloServer.on('connection', (socket: Socket) => metrics.countConnection('silo', socket));
    enrollServer.on('connection', (socket: Socket) => metrics.countConnection('enroll', socket));
    const audit = app.get(AuditTrail);
    siloServer.on('tlsClientError', (err: Error & { code?: string }, socket) =>
      refusedHandshake(audit, err, socket.remoteAddress),
    );
    const people = app;
    await asListener('people', config.host, config.port, () => people.listen(config.port, config.host));
    const siloPort = await asListener('silo', config.siloHost, config.siloPort, () =>
      listen(siloServer, config.siloPort, config.siloHost),
    );
    const enrollPort = await asListener('enrollment', config.enrollHost, config.enrollPort, () =>
      listen(enrollServer, config.enrollPort, config.enrollHost),
    );
    const server = app.getHttpServer();
    for (const listener of [server, siloServer, enrollServer]) outlastClientsIdle(listener);
    const url = `http://${hostForUrl(config.host)}:${portOf(server)}`;
    const siloUrl = `https://${hostForUrl(config.siloHost)}:${siloPort}`;
    const enrollUrl = `https://${hostForUrl(config.enrollHost)}:${enrollPort}`;
    app.get(SilosService).setListenerUrls({ silo: siloUrl, enroll: enrollUrl });
    const running = app;
    return {
      app,
      config,
      database,
      url,
      siloUrl,
      enrollUrl,
      close: () =>
        stopHub(running, [server, siloServer, enrollServer], database, config.shutdownTimeoutMs).finally(flushLog),
    };
  } catch (err) {
    // A hub that cannot serve all of its listeners must not linger half-started (answering 503/500, its timers
    // polling a closed pool): stop everything it opened, release the database, and let the caller exit.
    await Promise.all(extraServers.map(closeIfListening));
    await app?.close().catch(() => undefined);
    await database.close();
    flushLog();
    throw err;
  }
}

/** Runs a listen call, naming the listener and its address in the error, so an operator knows which port to free. */
async function asListener<T>(name: string, host: string, port: number, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'EADDRINUSE' ? 'the address is already in use' : (err as Error).message;
    throw new Error(`the ${name} listener cannot listen on ${hostForUrl(host)}:${port}: ${reason}`, { cause: err });
  }
}

function closeIfListening(server: Server): Promise<void> {
  return new Promise((done) => (server.listening ? server.close(() => done()) : done()));
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function portOf(server: Server): number {
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('listener has no port');
  return address.port;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolvePort(portOf(server));
    });
  });
}

/** What the listeners advertise as their idle limit (`Keep-Alive: timeout=5`, Node's own default). */
export const ADVERTISED_IDLE_SECONDS = 5;
/** How long a listener actually keeps an idle connection: well past what it advertises. */
export const SERVER_IDLE_MS = 30_000;

/**
 * An idle keep-alive connection is closed by the client, never by the hub at the instant a client reuses it. Clients
 * (fetch, the agent) close an idle connection before the advertised limit; a hub that closed it at that same limit
 * raced them, and on a loaded machine a request met a closing socket (ECONNRESET on a POST, which nobody may
 * retry). The hub keeps idle connections six times longer than it says; Node omits its own Keep-Alive header once
 * the response sets one. Node ≥ 19 closes idle connections on `server.close()`, so shutdown does not wait for them.
 */
function outlastClientsIdle(server: Server): void {
  server.keepAliveTimeout = SERVER_IDLE_MS;
  server.headersTimeout = Math.max(server.headersTimeout, SERVER_IDLE_MS + 1000);
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) =>
    res.setHeader('Keep-Alive', `timeout=${ADVERTISED_IDLE_SECONDS}`),
  );
}

function listenerHandler(
  listener: Listener,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    markListener(req as Request, listener);
    handler(req, res);
  };
}

/** Connections refused at the TLS layer (no, foreign, self-signed or expired certificate) still leave a trace. */
const refusalSeen = new Map<string, number>();
function refusedHandshake(audit: AuditTrail, err: Error & { code?: string }, remoteAddress: string | undefined): void {
  const key = `${remoteAddress}|${err.code}`;
  const now = Date.now();
  // At most one record per address and reason per minute, so a scanner cannot flood the audit trail.
  if (now - (refusalSeen.get(key) ?? 0) < 60_000) return;
  refusalSeen.set(key, now);
  void audit
    .record({
      actor: { type: 'system', id: 'silo-listener' },
      action: 'silo.tls.refused',
      details: { remoteAddress: remoteAddress ?? 'unknown', code: err.code ?? 'unknown', reason: err.message },
    })
    .catch(() => undefined);
}

/**
 * Writes out the log lines the asynchronous destination still holds, before the process may exit. A line being
 * written when this runs is finished by its own write; pino also flushes at process exit, but not on SIGKILL.
 */
function flushLogLines(destination: { flushSync(): void }): void {
  try {
    destination.flushSync();
  } catch (err) {
    process.stderr.write(`tessera-hub: the last log lines could not be written: ${(err as Error).message}\n`);
  }
}

function configureHttp(app: NestExpressApplication, config: HubConfig, logger: RootLogger): void {
  // Express's own 'trust proxy' is one setting for the whole app, hence for all three listeners; the client address is
  // decided per listener below instead, and Express never reads X-Forwarded-* itself.
  app.set('trust proxy', false);
  app.disable('x-powered-by');
  // Cached console views (ReadCache) are serialised once per value, with their ETag, whoever reads them.
  serveSharedJson(app.getHttpAdapter().getInstance(), isSharedRead);
  const metrics = app.get(MetricsService);
  const clientAddress: Record<Listener, ClientAddressResolver> = {
    people: new ClientAddressResolver(config.trustedProxies),
    enroll: new ClientAddressResolver(config.enrollTrustedProxies),
    // Mutual TLS ends at the hub, so no proxy can have added a header here: the TCP peer is the client.
    silo: new ClientAddressResolver([]),
  };
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (!isListenerMarked(req)) markListener(req, 'people');
    // `req.ip` keys the rate limits (ThrottlerGuard): an own property, so Express's prototype getter is not used.
    Object.defineProperty(req, 'ip', {
      value: clientAddress[listenerOf(req)].resolve(req.socket.remoteAddress, req.headers['x-forwarded-for']),
      enumerable: true,
    });
    // Set before anything can fail, so even a body-parser error answers with its correlation id.
    (req as Request & { id?: string }).id = correlationIdFor(req, res);
    const end = metrics.httpDuration.startTimer();
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      end({ listener: listenerOf(req), method: req.method, route, status: String(res.statusCode) });
    });
    next();
  });
  // After the id is set: every line about this request carries it.
  app.use(requestLogging(logger));
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: true,
        directives: {
          // The console is served from this origin only: no CDN, no outside host (hospitals run offline).
          'default-src': ["'self'"],
          'connect-src': ["'self'"],
          'img-src': ["'self'", 'data:'],
          'style-src': ["'self'", "'unsafe-inline'"],
          'font-src': ["'self'", 'data:'],
          // The hub may serve plain HTTP behind a TLS proxy or on loopback; upgrading would break those.
          'upgrade-insecure-requests': null,
        },
      },
    }),
  );
  app.useBodyParser('json', { limit: config.bodyLimit });
  // NUL bytes, deep nesting, unrepresentable numbers and prototype keys: 400 before any guard or handler.
  app.use(refuseHostileInput);
  app.useGlobalPipes(hubValidationPipe());
  // The API description is for people (and their tools) only: not on the silo listener, and above all not on the
  // enrollment listener, the one exposed to the internet. Covers the UI, its assets and the JSON and YAML documents,
  // in any letter case (Express routes match case-insensitively).
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (!req.path.toLowerCase().startsWith(`/${API_DOCS_PATH}`) || listenerOf(req) === 'people') return next();
    const { status, body } = errorBodyFor(
      new NotFoundException(`Cannot ${req.method} ${req.path}`),
      correlationIdOf(req),
    );
    res.status(status).json(body);
  });
  const doc = buildOpenApiDocument(app);
  SwaggerModule.setup(API_DOCS_PATH, app, doc, { jsonDocumentUrl: `${API_DOCS_PATH}/openapi.json` });
  // Errors raised before routing (body parsing: malformed JSON, oversized bodies) get the same shape as the rest.
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    sendError(res, errorBodyFor(err, correlationIdOf(req)));
  });
}

async function stopHub(
  app: INestApplication,
  servers: Server[],
  database: DatabaseEndpoint,
  timeoutMs: number,
): Promise<void> {
  const force = setTimeout(() => servers.forEach((s) => s.closeAllConnections()), timeoutMs);
  force.unref();
  try {
    // Stop accepting on every listener and wait for in-flight requests; then Nest closes the TypeORM pool.
    await Promise.all(servers.slice(1).map(closeIfListening));
    await app.close();
  } finally {
    clearTimeout(force);
    await database.close();
  }
}
