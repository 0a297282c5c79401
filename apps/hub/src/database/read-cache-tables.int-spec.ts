import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataGeneration, watchedClientClass } from './data-generation';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './embedded-postgres';
import { ReadCache } from './read-cache';
import { learnRelations } from './read-cache.module';

@Entity({ name: 'cached_wards' })
class Ward {
  @PrimaryColumn('int') id!: number;
  @Column('text') name!: string;
}

/** A promise and the function that settles it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * The read cache keeps a result while only tables it did not read change. That is exact only if each computation's
 * statements are attributed to it and to nothing else, including when it waits for the embedded database's one
 * connection behind another context's transaction. These run TypeORM on the real embedded database.
 */
describe('ReadCache by table on the embedded database', () => {
  let dataDir: string;
  let database: EmbeddedDatabase;
  let db: DataSource;
  let generation: DataGeneration;
  let cache: ReadCache;
  let computed = 0;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tessera-read-tables-'));
    database = await startEmbeddedPostgres(dataDir);
    generation = new DataGeneration();
    db = await new DataSource({
      type: 'postgres',
      host: database.socketDirectory,
      port: database.socketPort,
      username: 'postgres',
      database: 'postgres',
      entities: [Ward],
      extra: { max: database.poolSize, Client: watchedClientClass(generation) },
    }).initialize();
    await db.query(`CREATE TABLE "cached_wards" ("id" int PRIMARY KEY, "name" text NOT NULL)`);
    await db.query(`CREATE TABLE "cached_beds" ("id" int PRIMARY KEY, "ward_id" int NOT NULL)`);
    await db.query(`CREATE VIEW "cached_ward_beds" AS SELECT w."name", count(b."id") AS "beds"
                      FROM "cached_wards" w LEFT JOIN "cached_beds" b ON b."ward_id" = w."id" GROUP BY w."name"`);
    await db.query(`INSERT INTO "cached_wards" VALUES (1, 'cardiology')`);
    await learnRelations(db, generation);
    cache = new ReadCache(generation, { maxEntries: 100, maxAgeMs: 60_000 });
  });
  afterAll(async () => {
    await db.destroy();
    await database.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** The ward names, through a TypeORM repository, counting computations. */
  const wards = () =>
    cache.read('wards', async () => {
      computed += 1;
      return (await db.getRepository(Ward).find({ order: { id: 'ASC' } })).map((w) => w.name);
    });

  it('attributes a read to its computation even when it waited behind another context’s transaction', async () => {
    const hold = deferred();
    const holding = deferred();
    const transaction = db.transaction(async (tx) => {
      await tx.query(`INSERT INTO "cached_beds" VALUES (1, 1)`);
      holding.resolve();
      await hold.promise;
      await tx.query(`SELECT * FROM "cached_beds"`);
    });
    await holding.promise;
    const before = computed;
    const read = wards(); // waits for the one connection, held by the transaction
    await new Promise((r) => setTimeout(r, 50));
    hold.resolve();
    await transaction;
    expect(await read).toEqual(['cardiology']);
    expect(computed).toBe(before + 1);

    // Beds changed (in a context that is not the computation's): the wards result stands.
    await db.query(`INSERT INTO "cached_beds" VALUES (2, 1)`);
    await db.getRepository(Ward).findOne({ where: { id: 1 } }); // a read outside the cache changes nothing
    expect(await wards()).toEqual(['cardiology']);
    expect(computed).toBe(before + 1);
  });

  it('computes again on the next read after a write to a table it read, through TypeORM or raw SQL', async () => {
    expect(await wards()).toEqual(['cardiology']);
    await db.getRepository(Ward).save({ id: 2, name: 'oncology' });
    expect(await wards()).toEqual(['cardiology', 'oncology']);
    await db.query(`UPDATE "cached_wards" SET "name" = 'radiology' WHERE "id" = 2`);
    expect(await wards()).toEqual(['cardiology', 'radiology']);
    await db.transaction(async (tx) => {
      await tx.getRepository(Ward).save({ id: 3, name: 'neurology' });
      expect(await wards()).toEqual(['cardiology', 'radiology']); // not committed: not visible, not kept beyond
    });
    expect(await wards()).toEqual(['cardiology', 'radiology', 'neurology']);
    await db.query(`DELETE FROM "cached_wards" WHERE "id" = 3`);
    expect(await wards()).toEqual(['cardiology', 'radiology']);
  });

  it('computes a read of a view again after a write to any table', async () => {
    const beds = () =>
      cache.read('ward-beds', async () => {
        const rows = await db.query<
          {
            name: string;
            beds: string;
          }[]
        >(`SELECT "name", "beds" FROM "cached_ward_beds" ORDER BY "name"`);
        return rows.map((r) => `${r.name}:${r.beds}`);
      });
    expect(await beds()).toEqual(['cardiology:2', 'radiology:0']);
    await db.query(`INSERT INTO "cached_beds" VALUES (3, 2)`);
    expect(await beds()).toEqual(['cardiology:2', 'radiology:1']);
  });
});
