import { describe, expect, it } from 'vitest';
import { DataGeneration, StatementWatch, type ReadSet } from './data-generation';

const TABLES = ['silos', 'silo_certificates', 'rounds', 'round_participants', 'audit_records', 'audit_seq'];

/** A generation that knows the tables above and a view over them. */
function known(): DataGeneration {
  const generation = new DataGeneration();
  generation.know(TABLES, ['study_summary']);
  return generation;
}

/** The tables (or `all`) that moved when one connection sent `statements` in order; null when nothing moved. */
function writtenBy(...statements: string[]): string[] | 'all' | null {
  const generation = known();
  const start = generation.value;
  const watch = new StatementWatch(generation);
  for (const sql of statements) watch.observe(sql);
  if (generation.value === start) return null;
  const moved = TABLES.filter((t) => generation.changedSince(start, { tables: new Set([t]), all: false }));
  const nothing: ReadSet = { tables: new Set(), all: false };
  return generation.changedSince(start, nothing) ? 'all' : moved;
}

function readSet(...tables: string[]): ReadSet {
  return { tables: new Set(tables), all: false };
}

describe('StatementWatch', () => {
  it('moves nothing for plain reads outside a transaction', () => {
    expect(
      writtenBy('SELECT 1', '  select * from "silos" where id = $1', 'SELECT count(*) FROM audit_records'),
    ).toBeNull();
  });

  it('moves the tables an INSERT or UPDATE names, at every write outside a transaction', () => {
    expect(writtenBy('INSERT INTO "silos" VALUES ($1)')).toEqual(['silos']);
    expect(writtenBy('UPDATE rounds SET status = $1 WHERE id = (SELECT round_id FROM round_participants)')).toEqual([
      'rounds',
      'round_participants',
    ]);
  });

  it('moves everything for DELETE and TRUNCATE (foreign keys may cascade), DDL and statements naming no known table', () => {
    expect(writtenBy('DELETE FROM silos WHERE id = $1')).toBe('all');
    expect(writtenBy('TRUNCATE audit_records')).toBe('all');
    expect(writtenBy('ALTER TABLE silos ADD COLUMN x int')).toBe('all');
    expect(writtenBy('INSERT INTO brand_new_table VALUES (1)')).toBe('all');
    expect(writtenBy('WITH x AS (UPDATE silos SET a = 1 RETURNING id) SELECT * FROM x')).toBe('all');
  });

  it('treats a statement it cannot read (an empty text: a cursor or stream object) as a write of everything', () => {
    expect(writtenBy('')).toBe('all');
  });

  it('moves everything for any write while the tables are not known yet', () => {
    const generation = new DataGeneration();
    const watch = new StatementWatch(generation);
    watch.observe('INSERT INTO silos VALUES (1)');
    expect(generation.changedSince(0, readSet('rounds'))).toBe(true);
  });

  it('treats a SELECT that locks rows or calls a sequence as a write of what it names', () => {
    expect(writtenBy('SELECT * FROM rounds WHERE id = $1 FOR UPDATE')).toEqual(['rounds']);
    expect(writtenBy("SELECT nextval('audit_seq')")).toEqual(['audit_seq']);
    expect(writtenBy('SELECT nextval($1)')).toBe('all');
  });

  it('ignores advisory locks, savepoints and settings: they change no data', () => {
    expect(
      writtenBy(
        'SELECT pg_advisory_xact_lock(42)',
        'SELECT pg_advisory_lock($1)',
        'SET LOCAL lock_timeout = 1000',
        'BEGIN',
        'SAVEPOINT typeorm_1',
        'RELEASE SAVEPOINT typeorm_1',
        'COMMIT',
      ),
    ).toBeNull();
    // …but not a statement that only starts like one
    expect(writtenBy('SELECT pg_advisory_xact_lock(42), nextval($1)')).toBe('all');
  });

  it('moves what a transaction wrote once, at COMMIT, not before', () => {
    const generation = known();
    const watch = new StatementWatch(generation);
    const start = generation.value;
    watch.observe('START TRANSACTION');
    watch.observe('INSERT INTO round_participants VALUES ($1)');
    watch.observe('UPDATE silos SET status = $1');
    expect(generation.value).toBe(start); // not yet visible to anyone else
    watch.observe('COMMIT');
    expect(generation.value).toBe(start + 1);
    expect(generation.changedSince(start, readSet('silos'))).toBe(true);
    expect(generation.changedSince(start, readSet('round_participants'))).toBe(true);
    expect(generation.changedSince(start, readSet('rounds', 'audit_records'))).toBe(false);
  });

  it('moves everything at COMMIT when any statement of the transaction was unattributable', () => {
    expect(
      writtenBy('BEGIN', 'UPDATE silos SET a = 1', 'DELETE FROM rounds', 'INSERT INTO rounds VALUES (1)', 'COMMIT'),
    ).toBe('all');
  });

  it('moves nothing for a transaction that only read, or one rolled back', () => {
    expect(writtenBy('BEGIN', 'SELECT 1', 'COMMIT')).toBeNull();
    expect(writtenBy('BEGIN', 'INSERT INTO silos VALUES (1)', 'ROLLBACK')).toBeNull();
  });

  it('keeps a transaction open across ROLLBACK TO SAVEPOINT, so its later COMMIT still moves what it wrote', () => {
    expect(
      writtenBy(
        'BEGIN',
        'SAVEPOINT typeorm_1',
        'INSERT INTO silos VALUES (1)',
        'ROLLBACK TO SAVEPOINT typeorm_1',
        'COMMIT',
      ),
    ).toEqual(['silos']);
  });

  it('counts writes after a read-only transaction ended', () => {
    expect(writtenBy('BEGIN', 'SELECT 1', 'COMMIT', 'UPDATE silos SET status = $1')).toEqual(['silos']);
  });
});

describe('DataGeneration.recording', () => {
  it('collects the known tables that the reads of a computation name, and only those of that computation', async () => {
    const generation = known();
    const watch = new StatementWatch(generation);
    const mine: ReadSet = { tables: new Set(), all: false };
    const other: ReadSet = { tables: new Set(), all: false };
    await Promise.all([
      generation.recording(mine, async () => {
        await Promise.resolve();
        watch.observe('SELECT "s"."id" FROM "silos" "s" JOIN "silo_certificates" "c" ON "c"."silo_id" = "s"."id"');
      }),
      generation.recording(other, async () => {
        watch.observe('SELECT * FROM rounds');
        await new Promise((r) => setTimeout(r, 1));
        watch.observe('SELECT * FROM round_participants');
      }),
    ]);
    watch.observe('SELECT * FROM audit_records'); // outside any recording
    expect([...mine.tables].sort()).toEqual(['silo_certificates', 'silos']);
    expect([...other.tables].sort()).toEqual(['round_participants', 'rounds']);
    expect(mine.all || other.all).toBe(false);
  });

  it('marks a read of a view, or any read before the tables are known, as depending on everything', async () => {
    const generation = known();
    const watch = new StatementWatch(generation);
    const viaView: ReadSet = { tables: new Set(), all: false };
    await generation.recording(viaView, () => Promise.resolve(watch.observe('SELECT * FROM study_summary')));
    expect(viaView.all).toBe(true);

    const early = new DataGeneration();
    const earlyRead: ReadSet = { tables: new Set(), all: false };
    await early.recording(earlyRead, () => Promise.resolve(new StatementWatch(early).observe('SELECT * FROM silos')));
    expect(earlyRead.all).toBe(true);
  });

  it('a read of everything changes with any write; a read of some tables only with theirs', () => {
    const generation = known();
    const start = generation.value;
    generation.bump(new Set(['audit_records']));
    expect(generation.changedSince(start, { tables: new Set(), all: true })).toBe(true);
    expect(generation.changedSince(start, readSet('silos'))).toBe(false);
    expect(generation.changedSince(start, readSet('silos', 'audit_records'))).toBe(true);
  });
});
