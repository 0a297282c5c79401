import { describe, expect, it } from 'vitest';
import { DataGeneration, StatementWatch } from './data-generation';

/** The generation after one connection sends `statements` in order. */
function generationAfter(...statements: string[]): number {
  const generation = new DataGeneration();
  const watch = new StatementWatch(generation);
  for (const sql of statements) watch.observe(sql);
  return generation.value;
}

describe('StatementWatch', () => {
  it('leaves the generation alone for plain reads outside a transaction', () => {
    expect(
      generationAfter('SELECT 1', '  select * from "study" where id = $1', 'SELECT count(*) FROM audit_record'),
    ).toBe(0);
  });

  it('bumps at every write outside a transaction', () => {
    expect(generationAfter('INSERT INTO silo VALUES ($1)', 'UPDATE silo SET status = $1', 'DELETE FROM silo')).toBe(3);
  });

  it('treats a SELECT that locks rows, calls a sequence or takes an advisory lock as a write', () => {
    expect(generationAfter('SELECT * FROM round WHERE id = $1 FOR UPDATE')).toBe(1);
    expect(generationAfter('SELECT * FROM round FOR NO KEY UPDATE')).toBe(1);
    expect(generationAfter("SELECT nextval('audit_seq')")).toBe(1);
    expect(generationAfter('SELECT pg_advisory_xact_lock(42)')).toBe(1);
  });

  it('treats a statement it cannot read (an empty text: a cursor or stream object) as a write', () => {
    expect(generationAfter('')).toBe(1);
  });

  it('bumps once at COMMIT of a transaction that wrote, not before', () => {
    const generation = new DataGeneration();
    const watch = new StatementWatch(generation);
    watch.observe('START TRANSACTION');
    watch.observe('INSERT INTO silo VALUES ($1)');
    watch.observe('UPDATE silo SET status = $1');
    expect(generation.value).toBe(0); // not yet visible to anyone else
    watch.observe('COMMIT');
    expect(generation.value).toBe(1);
  });

  it('does not bump for a transaction that only read, or one rolled back', () => {
    expect(generationAfter('BEGIN', 'SELECT 1', 'COMMIT')).toBe(0);
    expect(generationAfter('BEGIN', 'INSERT INTO silo VALUES (1)', 'ROLLBACK')).toBe(0);
  });

  it('keeps a transaction open across ROLLBACK TO SAVEPOINT, so its later COMMIT still bumps', () => {
    expect(
      generationAfter(
        'BEGIN',
        'SAVEPOINT typeorm_1',
        'INSERT INTO silo VALUES (1)',
        'ROLLBACK TO SAVEPOINT typeorm_1',
        'COMMIT',
      ),
    ).toBe(1);
  });

  it('counts writes after a read-only transaction ended', () => {
    expect(generationAfter('BEGIN', 'SELECT 1', 'COMMIT', 'UPDATE silo SET status = $1')).toBe(1);
  });
});
