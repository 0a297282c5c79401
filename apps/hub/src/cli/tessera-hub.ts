#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { NestFactory } from '@nestjs/core';
import { AccountsService } from '../accounts/accounts.service';
import { ROLES, type Role } from '../accounts/user.entity';
import { AppModule } from '../app.module';
import { resolveSessionKey } from '../sessions/session-key';
import { HubException } from '../common/hub.exception';
import { ConfigError, configurationTable, loadHubConfig } from '../config/hub-config';
import { DataDirInUseError } from '../database/data-dir-lock';
import { runMigrations } from '../database/migrate';
import { openDatabase } from '../hub';
import { serveUntilSignalled } from '../serve';

function fail(message: string, code = 1): never {
  process.stderr.write(`tessera-hub: ${message}\n`);
  process.exit(code);
}

function config() {
  try {
    return loadHubConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 2);
    throw err;
  }
}

function readPassword(opts: { passwordEnv?: string; passwordStdin?: boolean }): string {
  if (opts.passwordEnv) {
    const value = process.env[opts.passwordEnv];
    if (!value) fail(`the environment variable ${opts.passwordEnv} is empty or unset`, 2);
    return value;
  }
  if (opts.passwordStdin) {
    const text = readFileSync(0, 'utf8').replace(/\r?\n$/, '');
    if (!text) fail('no password on standard input', 2);
    return text;
  }
  fail('give the password with --password-env VAR or --password-stdin (never on the command line)', 2);
}

const program = new Command('tessera-hub')
  .description('Tessera hub: governs federated studies across hospitals. Configured by environment variables.')
  .showHelpAfterError();

program
  .command('serve', { isDefault: true })
  .description('run the hub (console/API listener and silo listener)')
  .action(async () => {
    await serveUntilSignalled();
  });

program
  .command('migrate')
  .description('apply pending database migrations and exit')
  .action(async () => {
    const db = await openDatabase(config());
    try {
      const applied = await runMigrations(db);
      process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
    } finally {
      await db.close();
    }
  });

program
  .command('config')
  .description('print every configuration variable (markdown), or check the current environment')
  .option('--check', 'validate the current environment and exit 0 when it is valid')
  .action((opts: { check?: boolean }) => {
    if (opts.check) {
      config();
      process.stdout.write('configuration is valid\n');
    } else {
      process.stdout.write(configurationTable() + '\n');
    }
  });

/**
 * What `admin create` says when a hub holds the embedded database: the database has one writer, the running hub
 * (ADR 0002), so the CLI cannot add the account beside it. While the hub runs, an administrator adds people through
 * it; the CLI is for the first administrator or for recovery, with the hub stopped.
 */
function embeddedDatabaseBusyAdvice(reason: string): string {
  return (
    `${reason}.\n` +
    'While the hub runs, an administrator adds people through it, without downtime: in the console (Accounts > ' +
    'Add a person), or with the API: POST /api/users {"username", "password", "role", "mustChangePassword": true} ' +
    'with an administrator\'s bearer token (docs/operator-guide.md, "Accounts").\n' +
    'This command is for the first administrator, or to recover when nobody can sign in: stop the hub, run it, ' +
    'start the hub again. With DATABASE_URL (a PostgreSQL server) it also works while hubs run.'
  );
}

const admin = program.command('admin').description('manage accounts without the API');
admin
  .command('create')
  .description(
    'create an account (the first administrator, or a recovery account); on the embedded database only while no hub runs on it',
  )
  .requiredOption('--username <name>', 'account name')
  .option(
    '--role <role>',
    'admin or auditor',
    (v: string) => {
      if (!(ROLES as readonly string[]).includes(v)) throw new InvalidArgumentError('must be admin or auditor');
      return v as Role;
    },
    'admin',
  )
  .option('--password-env <VAR>', 'read the password from this environment variable')
  .option('--password-stdin', 'read the password from standard input')
  .action(async (opts: { username: string; role: Role; passwordEnv?: string; passwordStdin?: boolean }) => {
    const password = readPassword(opts);
    const cfg = config();
    const database = await openDatabase(cfg).catch((err: unknown) => {
      if (err instanceof DataDirInUseError) fail(embeddedDatabaseBusyAdvice(err.message), 3);
      throw err;
    });
    try {
      await runMigrations(database);
      const app = await NestFactory.createApplicationContext(
        AppModule.forRoot({ config: cfg, database, sessionKey: resolveSessionKey(cfg.jwtSecret, cfg.dataDir) }),
        { logger: false },
      );
      try {
        const user = await app.get(AccountsService).create(opts.username, password, opts.role);
        process.stdout.write(`created ${user.role} "${user.username}" (${user.id})\n`);
      } finally {
        await app.close();
      }
    } catch (err) {
      if (err instanceof HubException) fail(err.message);
      throw err;
    } finally {
      await database.close();
    }
  });

program.parseAsync(process.argv).catch((err: unknown) => fail((err as Error).message));
