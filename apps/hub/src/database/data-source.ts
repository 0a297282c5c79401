import type { DataSourceOptions } from 'typeorm';
import { UserEntity } from '../accounts/user.entity';
import { Initial1763800000000 } from './migrations/1763800000000-initial';
import type { DatabaseEndpoint } from './embedded-postgres';

/** Every entity and migration, listed explicitly (no globs: the same list works from sources and from dist). */
export const ENTITIES = [UserEntity];
export const MIGRATIONS = [Initial1763800000000];

export function dataSourceOptions(db: DatabaseEndpoint): DataSourceOptions {
  return {
    type: 'postgres',
    url: db.url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    migrationsRun: false,
    logging: false,
    extra: { max: db.poolSize },
  };
}
