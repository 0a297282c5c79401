import 'reflect-metadata';
import type { Server } from 'node:http';
import { type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import { Logger } from 'nestjs-pino';
import { AccountsService } from './accounts/accounts.service';
import { AppModule } from './app.module';
import { markListener } from './auth/listener';
import { resolveSessionKey } from './auth/session-key';
import { correlationIdOf, errorBodyFor } from './common/global-exception.filter';
import { correlationIdFor } from './common/logging';
import { hubValidationPipe } from './common/validation';
import type { HubConfig } from './config/config.schema';
import { externalPostgres, startEmbeddedPostgres, type DatabaseEndpoint } from './database/embedded-postgres';
import { runMigrations } from './database/migrate';
import { MetricsService } from './metrics/metrics.service';

export interface RunningHub {
  readonly app: INestApplication;
  readonly config: HubConfig;
  readonly database: DatabaseEndpoint;
  /** Base URL of the console/API listener, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  /** Graceful stop: refuse new connections, let in-flight requests finish (bounded), close the database. */
  close(): Promise<void>;
}

export async function openDatabase(config: HubConfig): Promise<DatabaseEndpoint> {
  return config.databaseUrl
    ? externalPostgres(config.databaseUrl, config.databasePoolSize)
    : startEmbeddedPostgres(config.dataDir);
}

/** Boots the hub: database (embedded or server), migrations, first administrator, listeners. */
export async function startHub(config: HubConfig, options: { logger?: boolean } = {}): Promise<RunningHub> {
  const database = await openDatabase(config);
  try {
    if (config.runMigrations) await runMigrations(database);
    const sessionKey = resolveSessionKey(config.jwtSecret, config.dataDir);
    const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot({ config, database, sessionKey }), {
      bodyParser: false,
      bufferLogs: true,
      logger: options.logger === false ? false : undefined,
    });
    app.useLogger(app.get(Logger));
    configureHttp(app, config);
    await app.init();
    await app.get(AccountsService).ensureFirstAdmin(config.adminUsername, config.adminPassword);
    await app.listen(config.port, config.host);
    const server = app.getHttpServer() as Server;
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    return { app, config, database, url, close: () => stopHub(app, server, database, config.shutdownTimeoutMs) };
  } catch (err) {
    await database.close();
    throw err;
  }
}

function configureHttp(app: NestExpressApplication, config: HubConfig): void {
  if (config.trustProxy) app.set('trust proxy', true);
  app.disable('x-powered-by');
  const metrics = app.get(MetricsService);
  app.use((req: Request, res: Response, next: NextFunction) => {
    markListener(req, 'people');
    // Set before anything can fail, so even a body-parser error answers with its correlation id.
    (req as Request & { id?: string }).id = correlationIdFor(req, res);
    const end = metrics.httpDuration.startTimer();
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      end({ listener: 'people', method: req.method, route, status: String(res.statusCode) });
    });
    next();
  });
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
  app.useGlobalPipes(hubValidationPipe());
  const doc = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Tessera hub API')
      .setDescription('Administrators and auditors. Silo routes are on the mutual-TLS listener.')
      .setVersion('0.1.0')
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup('api/docs', app, doc, { jsonDocumentUrl: 'api/docs/openapi.json' });
  // Errors raised before routing (body parsing: malformed JSON, oversized bodies) get the same shape as the rest.
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const { status, body } = errorBodyFor(err, correlationIdOf(req));
    res.status(status).json(body);
  });
}

async function stopHub(
  app: INestApplication,
  server: Server,
  database: DatabaseEndpoint,
  timeoutMs: number,
): Promise<void> {
  const force = setTimeout(() => server.closeAllConnections(), timeoutMs);
  force.unref();
  try {
    await app.close(); // stops accepting, waits for in-flight requests, closes the TypeORM pool
  } finally {
    clearTimeout(force);
    await database.close();
  }
}
