import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { verifyBundle, verifyCheckpoint, type AuditRecord, type Checkpoint } from '@tessera/audit';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, DATABASE_KINDS, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { AuditRecordRefusedError } from './audit-event.util';
import { AuditExportService } from './audit-export.service';
import type { AuditEventPage } from './audit-log.service';
import { AuditTrail, type AuditEvent } from './audit-trail';
import { AuditVerificationService, type StoredChainVerification } from './audit-verification.service';

const VERIFY_CLI = resolve(__dirname, '../../../../libs/audit/dist/verify-cli.js');
const run = promisify(execFile);

const AUDITOR = { username: 'auditor-ann', password: 'auditor password 42', role: 'auditor' } as const;

function testEvent(action: string, details: Record<string, unknown> = {}, studyId?: string): AuditEvent {
  return {
    actor: { type: 'system', id: 'audit-test' },
    action,
    ...(studyId ? { subject: { studyId } } : {}),
    details,
  };
}

describe.each(DATABASE_KINDS)('audit log on the %s database', (kind) => {
  let hub: TestHub;
  let db: DataSource;
  let trail: AuditTrail;
  let admin: Record<string, string>;
  let auditor: Record<string, string>;
  let adminId: string;
  const tmp = mkdtempSync(join(tmpdir(), 'tessera-audit-'));

  async function events(query: string, headers = auditor): Promise<AuditEventPage> {
    const res = await api(hub, 'GET', `/api/audit/events?${query}`, { headers });
    expect(res.status).toBe(200);
    return res.body as AuditEventPage;
  }

  async function headSeq(): Promise<number> {
    const [row] = await db.query<{ n: number }[]>('SELECT coalesce(max(seq), 0)::int AS n FROM audit_records');
    return row!.n;
  }

  /** Edits one stored record behind the hub's back, as someone with superuser access to the database could. */
  async function forge(seq: number, details: string): Promise<void> {
    const sql = 'UPDATE audit_records SET details = $2::jsonb WHERE seq = $1';
    if (kind === 'server') {
      const superuser = new Client({ connectionString: hub.config.databaseUrl });
      await superuser.connect();
      try {
        await superuser.query('ALTER TABLE audit_records DISABLE TRIGGER ALL');
        await superuser.query(sql, [seq, details]);
        await superuser.query('ALTER TABLE audit_records ENABLE TRIGGER ALL');
      } finally {
        await superuser.end();
      }
    } else {
      // PGlite has one session, the hub's: replica mode skips ordinary triggers for this transaction only.
      await db.transaction(async (tx) => {
        await tx.query('SET LOCAL session_replication_role = replica');
        await tx.query(sql, [seq, details]);
      });
    }
  }

  beforeAll(async () => {
    // Port 0 everywhere: other suites (or a developer's hub) may hold the default enrollment port.
    hub = await startTestHub(kind, { env: { TESSERA_ENROLL_PORT: '0' } });
    db = hub.app.get(DataSource);
    trail = hub.app.get(AuditTrail);
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    adminId = ((await api(hub, 'GET', '/api/auth/me', { headers: admin })).body as { id: string }).id;
    expect((await api(hub, 'POST', '/api/users', { headers: admin, json: AUDITOR })).status).toBe(201);
    auditor = await signIn(hub, AUDITOR.username, AUDITOR.password);
  });
  afterAll(async () => {
    await hub?.dispose();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('records the boot, the first administrator and its sign-in as one valid chain', async () => {
    const page = await events('order=asc&limit=500');
    const actions = page.events.map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['account.created', 'pki.ca.created', 'auth.login.succeeded']));
    expect(page.events.map((e) => e.seq)).toEqual(page.events.map((_, i) => i + 1));
    const verified = (await api(hub, 'GET', '/api/audit/verify', { headers: auditor })).body as StoredChainVerification;
    expect(verified).toMatchObject({ ok: true, firstBroken: null, headSeq: await headSeq() });
  });

  it('refuses UPDATE, DELETE and TRUNCATE in the database itself, even on the hub’s own connection', async () => {
    const before = await headSeq();
    for (const sql of [
      `UPDATE audit_records SET action = 'forged' WHERE seq = 1`,
      `UPDATE audit_records SET details = '{}'::jsonb`,
      'DELETE FROM audit_records WHERE seq = 1',
      'DELETE FROM audit_records WHERE false',
      'TRUNCATE audit_records CASCADE',
      'DELETE FROM audit_checkpoints',
      'TRUNCATE audit_signing_keys CASCADE',
    ]) {
      await expect(db.query(sql), sql).rejects.toThrow(/append-only/);
    }
    // Inserting anything but the next link of the chain is refused too.
    await expect(
      db.query(
        `INSERT INTO audit_records (seq, prev_hash, hash, time, time_at, actor, action, subject, details, actor_id)
         VALUES ($1, repeat('0', 64), repeat('1', 64), 'x', now(), '{}', 'forged', '{}', '{}', 'x')`,
        [before + 5],
      ),
    ).rejects.toThrow(/does not extend the head/);
    expect(await headSeq()).toBe(before);
  });

  it('writes 50 concurrent records as one contiguous, valid chain', async () => {
    const before = await headSeq();
    await Promise.all(Array.from({ length: 50 }, (_, i) => trail.record(testEvent('test.concurrent', { i }))));
    const [stats] = await db.query<{ n: number; lo: number; hi: number; ours: number }[]>(
      `SELECT count(*)::int AS n, min(seq)::int AS lo, max(seq)::int AS hi,
              count(*) FILTER (WHERE action = 'test.concurrent')::int AS ours
       FROM audit_records`,
    );
    expect(stats).toEqual({ n: before + 50, lo: 1, hi: before + 50, ours: 50 });
    const verified = await hub.app.get(AuditVerificationService).verifyStoredChain();
    expect(verified).toMatchObject({ ok: true, records: before + 50, headSeq: before + 50 });
  });

  it('records an administrator’s action with that administrator as the actor', async () => {
    const res = await api(hub, 'POST', '/api/silos', {
      headers: admin,
      json: { name: `audited-${kind}`, contact: 'it@example.org' },
    });
    expect(res.status).toBe(201);
    const siloId = (res.body as { silo: { id: string } }).silo.id;
    const page = await events(`action=silo.&siloId=${siloId}`);
    expect(page.events).toHaveLength(1);
    expect(page.events[0]).toMatchObject({
      action: 'silo.registered',
      actor: { type: 'user', id: adminId, name: ADMIN.username },
      subject: { siloId },
      details: { name: `audited-${kind}` },
    });
    // The one-time enrollment token went to the administrator, never into the log.
    const token = (res.body as { bundle: { token: string } }).bundle.token;
    expect(JSON.stringify(page.events[0])).not.toContain(token);
  });

  it('records failed sign-ins without the password', async () => {
    const attempt = { username: `nobody-${kind}`, password: 'guessed password 1' };
    expect((await api(hub, 'POST', '/api/auth/login', { json: attempt })).status).toBe(401);
    const page = await events(`action=auth.login.failed&actor=${attempt.username}`);
    expect(page.events).toHaveLength(1);
    expect(page.events[0]!.details).toEqual({ username: attempt.username, reason: 'unknown-user' });
    expect(JSON.stringify(page.events[0])).not.toContain(attempt.password);
  });

  it('lets an auditor read and verify, but not administer or sign checkpoints', async () => {
    for (const path of ['/api/audit/events', '/api/audit/verify', '/api/audit/checkpoints', '/api/audit/public-key']) {
      expect((await api(hub, 'GET', path, { headers: auditor })).status, path).toBe(200);
      expect((await api(hub, 'GET', path)).status, path).toBe(401);
    }
    expect((await api(hub, 'POST', '/api/audit/checkpoints', { headers: auditor })).status).toBe(403);
    const adminRoute = await api(hub, 'POST', '/api/users', {
      headers: auditor,
      json: { username: 'mallory', password: 'a long password!', role: 'admin' },
    });
    expect(adminRoute.status).toBe(403);
  });

  it('filters by time, action prefix, study, text, and pages by cursor', async () => {
    const studyId = randomUUID();
    const start = new Date().toISOString();
    for (let i = 0; i < 5; i++)
      await trail.record(testEvent('study.test.step', { step: i, note: `marker-${i}` }, studyId));
    await trail.record(testEvent('study.test.other', {}, randomUUID()));

    const seen: AuditRecord[] = [];
    let cursor: number | null = null;
    do {
      const page: AuditEventPage = await events(
        `studyId=${studyId}&order=asc&limit=2${cursor === null ? '' : `&cursor=${cursor}`}`,
      );
      expect(page.events.length).toBeLessThanOrEqual(2);
      seen.push(...page.events);
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(seen.map((e) => e.details.step)).toEqual([0, 1, 2, 3, 4]);

    const newestFirst = await events(`studyId=${studyId}&limit=500`);
    expect(newestFirst.events.map((e) => e.details.step)).toEqual([4, 3, 2, 1, 0]);
    expect((await events(`q=MARKER-3&from=${encodeURIComponent(start)}`)).events.map((e) => e.details.step)).toEqual([
      3,
    ]);
    expect((await events(`action=study.test.&from=${encodeURIComponent(start)}`)).events).toHaveLength(6);
    expect((await events(`action=study.test.step&to=${encodeURIComponent(start)}`)).events).toHaveLength(0);
    // `_` and `%` are literal in the prefix, not LIKE wildcards.
    expect((await events('action=study_test')).events).toHaveLength(0);
  });

  it('refuses bad queries with 400 naming the field', async () => {
    const cases: [string, string][] = [
      ['limit=501', 'limit'],
      ['limit=abc', 'limit'],
      ['cursor=-1', 'cursor'],
      ['from=yesterday', 'from'],
      ['to=2025-01-31T09:00:00', 'to'],
      ['studyId=not-a-uuid', 'studyId'],
      ['order=sideways', 'order'],
      ['colour=red', 'colour'],
    ];
    for (const [query, field] of cases) {
      const res = await api(hub, 'GET', `/api/audit/events?${query}`, { headers: auditor });
      expect(res.status, query).toBe(400);
      expect((res.body as { details: string[] }).details.join(' '), query).toContain(field);
    }
  });

  it('refuses to record secrets', async () => {
    const before = await headSeq();
    await expect(trail.record(testEvent('test.secret', { enrollmentToken: 'abc' }))).rejects.toThrow(
      AuditRecordRefusedError,
    );
    await expect(trail.record(testEvent('test.secret', { nested: { password: 'x' } }))).rejects.toThrow(
      AuditRecordRefusedError,
    );
    expect(await headSeq()).toBe(before);
  });

  it('joins the enclosing hub transaction: the record commits or rolls back with it', async () => {
    const before = await headSeq();
    await expect(
      db.transaction(async () => {
        await trail.record(testEvent('test.rolled-back'));
        throw new Error('state change failed');
      }),
    ).rejects.toThrow('state change failed');
    expect(await headSeq()).toBe(before);
    await db.transaction(async () => {
      await trail.record(testEvent('test.committed'));
    });
    expect(await headSeq()).toBe(before + 1);
  });

  it('signs checkpoints on demand, only when there is something new, verifiable with the public key', async () => {
    const key = (await api(hub, 'GET', '/api/audit/public-key', { headers: auditor })).body as {
      publicKeyPem: string;
      keyId: string;
    };
    expect(key.publicKeyPem).toContain('BEGIN PUBLIC KEY');
    const first = await api(hub, 'POST', '/api/audit/checkpoints', { headers: admin });
    expect(first.status).toBe(201);
    const checkpoint = first.body as Checkpoint;
    expect(checkpoint).toMatchObject({ seq: await headSeq(), count: checkpoint.seq, keyId: key.keyId });
    expect(verifyCheckpoint(checkpoint, key.publicKeyPem)).toEqual({ ok: true, keyId: key.keyId });
    const [row] = await db.query<{ hash: string }[]>('SELECT hash FROM audit_records WHERE seq = $1', [checkpoint.seq]);
    expect(checkpoint.headHash).toBe(row!.hash);

    const again = await api(hub, 'POST', '/api/audit/checkpoints', { headers: admin });
    expect(again.body).toEqual(checkpoint);
    const listed = (await api(hub, 'GET', '/api/audit/checkpoints?limit=500', { headers: auditor }))
      .body as Checkpoint[];
    expect(listed.filter((c) => c.seq === checkpoint.seq)).toEqual([checkpoint]);
    for (const c of listed) expect(verifyCheckpoint(c, key.publicKeyPem).ok).toBe(true);
  });

  it('names exactly the edited record as the first broken link', async () => {
    await api(hub, 'POST', '/api/audit/checkpoints', { headers: admin });
    const target = (await events('action=auth.login.failed&order=asc')).events[0]!;
    const original = JSON.stringify(target.details);
    await forge(target.seq, JSON.stringify({ ...target.details, reason: 'wrong-password' }));
    try {
      const res = await api(hub, 'GET', '/api/audit/verify', { headers: auditor });
      expect(res.status).toBe(200);
      const verified = res.body as StoredChainVerification;
      expect(verified.ok).toBe(false);
      expect(verified.firstBroken).toMatchObject({ seq: target.seq, code: 'HASH_MISMATCH' });
      expect(verified.records).toBe(target.seq - 1);
    } finally {
      await forge(target.seq, original);
    }
    const restored = (await api(hub, 'GET', '/api/audit/verify', { headers: auditor })).body as StoredChainVerification;
    expect(restored).toMatchObject({ ok: true, firstBroken: null });
    expect(restored.checkpoints.verified).toBe(restored.checkpoints.total);
    expect(restored.checkpoints.total).toBeGreaterThan(0);
  });

  it('exports a bundle that verifies with verifyBundle and with the tessera-verify CLI', async () => {
    const exporter = hub.app.get(AuditExportService);
    const key = (await api(hub, 'GET', '/api/audit/public-key', { headers: auditor })).body as { publicKeyPem: string };
    const keyFile = join(tmp, `hub-${kind}.pem`);
    writeFileSync(keyFile, key.publicKeyPem);

    const whole = await exporter.exportBundle({}, { title: 'whole chain' });
    expect(whole.records[0]!.seq).toBe(1);
    expect(whole.records.at(-1)!.seq).toBe(await headSeq());
    expect(verifyBundle(whole, { trustedPublicKey: key.publicKeyPem })).toMatchObject({ ok: true, problems: [] });
    const wholeFile = join(tmp, `whole-${kind}.json`);
    writeFileSync(wholeFile, JSON.stringify(whole));
    const ok = await run(process.execPath, [VERIFY_CLI, wholeFile, '--public-key', keyFile]);
    expect(ok.stdout).toContain('OK:');

    // A study that starts after a checkpoint: its segment is anchored on that checkpoint instead of genesis.
    const studyId = randomUUID();
    await trail.record(testEvent('study.test.started', {}, studyId));
    await trail.record(testEvent('study.test.ended', {}, studyId));
    const study = await exporter.exportBundle({ studyId }, { studyId });
    expect(study.records[0]!.seq).toBeGreaterThan(1);
    expect(study.records.filter((r) => r.subject.studyId === studyId).map((r) => r.action)).toEqual([
      'study.test.started',
      'study.test.ended',
    ]);
    expect(verifyBundle(study, { trustedPublicKey: key.publicKeyPem }).ok).toBe(true);

    // The same bundle with one record edited fails offline, naming that record.
    const edited = structuredClone(study);
    const victim = edited.records.find((r) => r.action === 'study.test.started')!;
    victim.details = { forged: true };
    const editedFile = join(tmp, `edited-${kind}.json`);
    writeFileSync(editedFile, JSON.stringify(edited));
    const failed = await run(process.execPath, [VERIFY_CLI, editedFile, '--public-key', keyFile, '--json']).then(
      () => ({ code: 0, stdout: '' }),
      (err: { code: number; stdout: string }) => err,
    );
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout)).toMatchObject({ ok: false, firstBroken: { seq: victim.seq } });
  });

  it('exports the filtered events as CSV', async () => {
    const res = await fetch(`${hub.url}/api/audit/events.csv?action=silo.registered`, { headers: auditor });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/csv');
    const lines = (await res.text()).trimEnd().split('\r\n');
    expect(lines[0]).toBe(
      'seq,time,actor_type,actor_id,actor_name,action,study_id,silo_id,subject,details,prev_hash,hash',
    );
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(`,user,${adminId},${ADMIN.username},silo.registered,`);
  });
});
