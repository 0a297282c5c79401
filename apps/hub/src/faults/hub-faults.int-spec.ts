import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { UpdateReceipt } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { processTestBed, until } from '../testing/hub-process.test-util';
import { createServerDatabase } from '../testing/test-hub.test-util';
import { FaultBed, PrivatePostgres } from './fault-bed.test-util';

/**
 * The fault-injection suite (docs/reliability.md): a real hub process and real agent processes over mutual TLS, on a
 * fresh PostgreSQL database, with faults injected where they hurt: the hub killed (SIGKILL) inside and just after the
 * transactions that accept an update and close a round and between a round's aggregation and its commit, an agent killed while the hub holds its receipt (its
 * restarted agent sends the release again and keeps the receipt), the blob
 * store made read-only mid-round, a stored update corrupted before aggregation, and the database server crashed
 * mid-round. After each, FaultBed.assertNothingLost checks the database, blob store, audit chain and every silo.
 */

const HOSPITALS = ['cleveland', 'hungarian', 'va'];

describe('the hub killed at its crash points (DP study)', () => {
  const bed = processTestBed('tessera-fault-kill-');

  it('loses nothing accepted, records everything once, and the silos keep their receipts', async () => {
    const db = await createServerDatabase();
    bed.cleanups.push(db.drop);
    const f = new FaultBed(bed, db.url);
    await f.startHub();
    await f.enroll(HOSPITALS);
    await f.createStudy(true);
    for (const s of f.silos) f.startAgent(s);

    // 1. Inside the acceptance transaction, after the row and its record: both roll back; the agent retries.
    await f.stopHub();
    await f.startHub({ TESSERA_FAULT_POINT: 'before-accept-commit@2' });
    await f.start();
    await f.hubDies();
    // 2. After the acceptance committed, before the receipt: the agent re-sends and gets the original receipt.
    await f.startHub({ TESSERA_FAULT_POINT: 'after-accept-commit@1' });
    await f.hubDies();
    // 3. Between aggregation and commit: the round is claimed ('closing'), its aggregate stored, nothing committed.
    await f.startHub({ TESSERA_FAULT_POINT: 'after-aggregation@1' });
    await f.hubDies();
    const closing = await f.query(`SELECT number FROM rounds WHERE study_id = $1 AND status = 'closing'`, [f.studyId]);
    expect(closing).toHaveLength(1);
    // 4. Inside a round's closing transaction (aggregate stored, next round opened and charged, records written),
    //    reached by a hub that first takes over the claim the killed one left once its lease ran out.
    await f.startHub({ TESSERA_FAULT_POINT: 'before-close-commit@1' });
    await f.hubDies();
    expect(f.hub.output()).toContain('a lapsed close claim is taken over');
    // 5. Just after a round's close committed.
    await f.startHub({ TESSERA_FAULT_POINT: 'after-close-commit@1' });
    await f.hubDies();
    await f.startHub();
    await f.completes();

    const rounds = await f.rounds();
    expect(rounds.filter((r) => r.kind === 'train' && r.status === 'closed').map((r) => r.number)).toEqual([1, 2]);
    // Every silo holds a receipt for every round it uploaded to, and it names what the hub stored.
    for (const s of f.silos) {
      for (const r of rounds.filter((x) => x.kind === 'train' && x.status === 'closed')) {
        const p = r.participants.find((x) => x.siloId === s.id);
        if (p?.status !== 'uploaded') continue;
        const receipt = JSON.parse(
          readFileSync(join(bed.root, s.key, 'receipts', f.studyId, `${r.number}-${r.attempt}.json`), 'utf8'),
        ) as UpdateReceipt;
        expect(receipt.updateSha256).toBe(p.updateSha256);
      }
    }
    await f.assertNothingLost(true);
    // Two claims left by killed hubs each wait out their lease (CLOSE_LEASE_SECONDS) on this server database.
  }, 300_000);
});

describe('an agent killed while the hub holds its receipt', () => {
  const bed = processTestBed('tessera-fault-agent-');

  it('keeps the update once; the restarted agent sends its release again, keeps the original receipt, and reconciles', async () => {
    const db = await createServerDatabase();
    bed.cleanups.push(db.drop);
    const f = new FaultBed(bed, db.url);
    await f.startHub();
    await f.enroll(HOSPITALS);
    await f.createStudy(true);
    // The first acceptance commits, then the hub holds the answer for 6 s: the agent is killed meanwhile.
    await f.stopHub();
    await f.startHub({ TESSERA_FAULT_POINT: 'after-accept-commit@1', TESSERA_FAULT_STALL_MS: '6000' });
    for (const s of f.silos) f.startAgent(s);
    await f.start();
    let victimId = '';
    await until(
      'an accepted update',
      async () => {
        const rows = await f.query<{ silo_id: string }>(
          `SELECT p.silo_id FROM round_participants p JOIN rounds r ON r.id = p.round_id
            WHERE r.study_id = $1 AND p.status = 'uploaded' ORDER BY p.reported_at LIMIT 1`,
          [f.studyId],
        );
        // The first acceptance is the one whose answer the hub holds.
        victimId = rows[0]?.silo_id ?? '';
        return victimId !== '';
      },
      30_000,
    );
    const victim = f.silos.find((s) => s.id === victimId)!;
    victim.run!.child.kill('SIGKILL');
    await victim.run!.exited;
    // It never read the receipt: none is stored on its side.
    const receipts = join(bed.root, victim.key, 'receipts', f.studyId);
    expect(existsSync(receipts) ? readdirSync(receipts) : []).toEqual([]);
    f.startAgent(victim);
    await f.completes();

    const round1 = (await f.rounds()).find((r) => r.number === 1 && r.status === 'closed')!;
    const accepted = round1.participants.find((p) => p.siloId === victimId)!;
    expect(accepted.status).toBe('uploaded');
    // The restarted agent sent its persisted release again before taking a task, and stored the hub's answer: the
    // receipt for exactly the update the hub accepted.
    const kept = JSON.parse(readFileSync(join(receipts, `1-${round1.attempt}.json`), 'utf8')) as UpdateReceipt;
    expect(kept).toMatchObject({ studyId: f.studyId, siloId: victimId, round: 1, updateSha256: accepted.updateSha256 });
    expect(victim.run!.output()).toMatch(/the hub holds the update sent as attempt 1 .*its receipt for attempt \d+/);
    // Its persisted release, re-sent after the round closed (as the agent re-sends it), gets the original receipt:
    // the hash the hub accepted and the time it accepted it, signed; nothing new is stored or recorded.
    const resent = await f.resendRelease(victim, 1);
    expect(resent.status).toBe(200);
    const receipt = resent.body as UpdateReceipt;
    expect(receipt).toMatchObject({ studyId: f.studyId, siloId: victimId, round: 1, attempt: round1.attempt });
    expect(receipt.updateSha256).toBe(accepted.updateSha256);
    const records = await f.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_records
        WHERE action = 'round.update.accepted' AND study_id = $1 AND silo_id = $2 AND (details->>'round')::int = 1`,
      [f.studyId, victimId],
    );
    expect(records[0]!.n).toBe(1);
    // Its audit log records the upload with the receipt: every silo reconciles, the victim too.
    await f.assertNothingLost(true);
  });
});

describe('the blob store read-only mid-round, then restored', () => {
  const bed = processTestBed('tessera-fault-ro-');

  it('refuses and retries while read-only, then completes with nothing lost', async () => {
    const db = await createServerDatabase();
    bed.cleanups.push(db.drop);
    const f = new FaultBed(bed, db.url);
    await f.startHub();
    await f.enroll(HOSPITALS);
    await f.createStudy(false);
    const blobs = join(f.dataDir, 'blobs');
    // The immutable attribute binds root too (chmod would not: the suite runs as root in CI).
    const setImmutable = (on: boolean): void => {
      execFileSync('chattr', ['-R', on ? '+i' : '-i', blobs], { stdio: 'pipe' });
    };
    bed.cleanups.unshift(() => Promise.resolve(setImmutable(false)));
    await f.start();
    setImmutable(true);
    for (const s of f.silos) f.startAgent(s);
    // While read-only: nothing can be stored, so nothing is accepted, and the hub keeps running.
    await new Promise((r) => setTimeout(r, 5_000));
    const during = await f.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM round_participants p JOIN rounds r ON r.id = p.round_id
        WHERE r.study_id = $1 AND p.status = 'uploaded'`,
      [f.studyId],
    );
    expect(during[0]!.n).toBe(0);
    expect(f.hub.child.exitCode).toBeNull();
    setImmutable(false);
    await f.completes();
    await f.assertNothingLost(false);
  });
});

describe('a stored update corrupted before aggregation', () => {
  const bed = processTestBed('tessera-fault-corrupt-');

  it('is set aside with the exact cause, never averaged; the round closes with the others', async () => {
    const db = await createServerDatabase();
    bed.cleanups.push(db.drop);
    const f = new FaultBed(bed, db.url);
    await f.startHub();
    await f.enroll(HOSPITALS);
    await f.createStudy(false);
    await f.start();
    // Two agents upload round 1; the third waits, so the round stays open while a stored update is corrupted.
    f.startAgent(f.silos[0]!);
    f.startAgent(f.silos[1]!);
    let corrupted = { silo: '', hash: '' };
    await until(
      'two accepted updates',
      async () => {
        const rows = await f.query<{ silo_id: string; update_hash: string }>(
          `SELECT p.silo_id, p.update_hash FROM round_participants p JOIN rounds r ON r.id = p.round_id
            WHERE r.study_id = $1 AND r.number = 1 AND p.status = 'uploaded' ORDER BY p.silo_id`,
          [f.studyId],
        );
        if (rows.length < 2) return false;
        corrupted = { silo: rows[0]!.silo_id, hash: rows[0]!.update_hash.trim() };
        return true;
      },
      30_000,
    );
    const file = join(f.dataDir, 'blobs', corrupted.hash.slice(0, 2), corrupted.hash);
    const bytes = readFileSync(file);
    bytes[bytes.length - 1]! ^= 0x40; // one bit of the last float32 of the payload
    writeFileSync(file, bytes);
    f.startAgent(f.silos[2]!);
    await until('round 1 to close', async () =>
      (await f.rounds()).some((r) => r.number === 1 && r.status === 'closed'),
    );
    const round1 = (await f.rounds()).find((r) => r.number === 1 && r.status === 'closed')!;
    const setAside = round1.participants.find((p) => p.siloId === corrupted.silo)!;
    expect(setAside.status).toBe('failed');
    expect(setAside.failure).toMatchObject({ code: 'UPDATE_CORRUPTED' });
    expect(setAside.failure?.message).toContain(`the stored update ${corrupted.hash} is corrupted on disk`);
    expect(round1.summary?.reported).toBe(2);
    const recorded = await f.query<{ details: { code: string } }>(
      `SELECT details FROM audit_records WHERE action = 'round.silo.failed' AND study_id = $1 AND silo_id = $2`,
      [f.studyId, corrupted.silo],
    );
    expect(recorded.map((r) => r.details.code)).toEqual(['UPDATE_CORRUPTED']);
    await f.completes();
    // The corrupted bytes are no longer referenced by an accepted update; the sweep may remove them.
    await f.assertNothingLost(false);
  });
});

const pgBin = PrivatePostgres.binDir();

describe.skipIf(pgBin === null)('the database server crashed mid-round (a private cluster)', () => {
  // Skipped only where no PostgreSQL server binaries are installed (they are in CI: .ci/run installs the server).
  const bed = processTestBed('tessera-fault-pg-');

  it('keeps every accepted update and record after the server comes back', async () => {
    const pg = await PrivatePostgres.create(bed.root);
    bed.cleanups.push(() => Promise.resolve(pg.stop()));
    const f = new FaultBed(bed, pg.url);
    await f.startHub();
    await f.enroll(HOSPITALS);
    await f.createStudy(true);
    for (const s of f.silos) f.startAgent(s);
    await f.start();
    await until(
      'an accepted update',
      async () =>
        (
          await f.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM round_participants p JOIN rounds r ON r.id = p.round_id
              WHERE r.study_id = $1 AND p.status = 'uploaded'`,
            [f.studyId],
          )
        )[0]!.n > 0,
      30_000,
    );
    pg.crash();
    await new Promise((r) => setTimeout(r, 3_000));
    pg.start();
    // A hub that lost its database either rides it out (the pool reconnects) or exits to be restarted by its
    // supervisor; here the test is the supervisor.
    if (f.hub.child.exitCode !== null) await f.startHub();
    await f.completes();
    await f.assertNothingLost(true);
  });
});
