import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './embedded-postgres';
import { TransactionGate } from './transaction-gate';

/** A promise and the function that settles it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Lets node-postgres queue what the test asked for (a few turns of the event loop). */
const settle = () => new Promise((r) => setTimeout(r, 50));

/**
 * On the embedded database's one connection, a read must not wait for every transaction queued before it: with the
 * gate it waits for the one holding the connection only. The same scenario without the gate is the reference: there
 * node-postgres serves the queue in arrival order and the read comes last.
 */
describe('TransactionGate on the embedded database', () => {
  let dataDir: string;
  let database: EmbeddedDatabase;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tessera-gate-'));
    database = await startEmbeddedPostgres(dataDir);
  });
  afterAll(async () => {
    await database.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function openDataSource(): Promise<DataSource> {
    const db = new DataSource({
      type: 'postgres',
      host: database.socketDirectory,
      port: database.socketPort,
      username: 'postgres',
      database: 'postgres',
      extra: { max: database.poolSize },
    });
    return db.initialize();
  }

  /**
   * One transaction holds the connection until released; three more are then asked for, then a read. Returns the
   * order in which the three transactions started and the read finished.
   */
  async function scenario(db: DataSource): Promise<string[]> {
    const order: string[] = [];
    const hold = deferred();
    const holding = deferred();
    const first = db.transaction(async (tx) => {
      await tx.query('SELECT 1');
      holding.resolve();
      await hold.promise;
    });
    await holding.promise;
    const queued = ['tx2', 'tx3', 'tx4'].map((name) =>
      db.transaction(async (tx) => {
        order.push(name);
        await tx.query('SELECT 1');
        await tx.query('SELECT 2');
      }),
    );
    await settle();
    const read = db.query('SELECT 42 AS answer').then((rows: { answer: number }[]) => {
      order.push('read');
      return rows;
    });
    await settle();
    hold.resolve();
    await first;
    expect(await read).toEqual([{ answer: 42 }]);
    await Promise.all(queued);
    return order;
  }

  it('serves a read after the transaction holding the connection, before those queued', async () => {
    const db = await openDataSource();
    try {
      const gate = TransactionGate.install(db);
      expect(TransactionGate.install(db)).toBe(gate);
      const order = await scenario(db);
      // At most the next transaction, which entered the pool's queue when the first ended, may precede the read.
      expect(order.indexOf('read')).toBeLessThanOrEqual(1);
      // Transactions keep their arrival order.
      expect(order.filter((x) => x !== 'read')).toEqual(['tx2', 'tx3', 'tx4']);
      expect(gate.waiting).toBe(0);
    } finally {
      await db.destroy();
    }
  });

  it('without the gate the read waits for every transaction queued before it (the reference behaviour)', async () => {
    const db = await openDataSource();
    try {
      expect(await scenario(db)).toEqual(['tx2', 'tx3', 'tx4', 'read']);
    } finally {
      await db.destroy();
    }
  });

  it('lets the next transaction in after one fails', async () => {
    const db = await openDataSource();
    try {
      TransactionGate.install(db);
      const failing = db.transaction(async (tx) => {
        await tx.query('SELECT 1');
        throw new Error('refused inside the transaction');
      });
      const next = db.transaction(async (tx) => await tx.query<{ seven: number }[]>('SELECT 7 AS seven'));
      await expect(failing).rejects.toThrow('refused inside the transaction');
      expect(await next).toEqual([{ seven: 7 }]);
    } finally {
      await db.destroy();
    }
  });
});
