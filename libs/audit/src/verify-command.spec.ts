import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { publicKeyFingerprint, publicKeyPem } from './ed25519-signing';
import { buildBundle, type AuditBundle } from './report-bundle';
import { runVerifyCli, type VerifyCliIo } from './verify-command';
import { buildChain, clone, ed25519KeyFromSeed, RFC8032_TEST1, RFC8032_TEST2 } from './audit-fixtures.test-util';

const HUB = ed25519KeyFromSeed(RFC8032_TEST1.secret);
const OTHER = ed25519KeyFromSeed(RFC8032_TEST2.secret);
const CHAIN = buildChain(6);
const BUNDLE = buildBundle({
  records: CHAIN,
  study: { studyId: 'study-1' },
  signingKey: HUB,
  generatedAt: '2025-03-02T00:00:00.000Z',
});

function tampered(): AuditBundle {
  const bundle = clone(BUNDLE);
  bundle.records[3]!.action = 'plan.rejected';
  return bundle;
}

/** An in-memory file system: path → text. */
function files(entries: Record<string, string>): VerifyCliIo {
  return {
    readFile(path) {
      if (!(path in entries)) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
      return entries[path]!;
    },
  };
}

const FS = files({
  'report.json': JSON.stringify(BUNDLE, null, 2),
  'tampered.json': JSON.stringify(tampered()),
  'broken.json': '{"format": "tessera.audit-bundle/1", ',
  'other.json': JSON.stringify({ hello: 'world' }),
  'hub.pem': publicKeyPem(HUB),
  'other.pem': publicKeyPem(OTHER),
  'junk.pem': 'not a key',
});

describe('tessera-verify', () => {
  it('exits 0 with a summary for an intact report', () => {
    const { stdout, stderr, exitCode } = runVerifyCli(['report.json'], FS);
    expect(exitCode).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toContain('OK: report.json is intact');
    expect(stdout).toContain('records:     6 (seq 1..6)');
    expect(stdout).toContain(`head hash:   ${CHAIN[5]!.hash}`);
    expect(stdout).toContain('checkpoints: 1 of 1 verified');
    expect(stdout).toContain(`sha256:${publicKeyFingerprint(HUB)} (not pinned`);
  });

  it('exits 1 and names the first broken link', () => {
    const { stdout, exitCode } = runVerifyCli(['tampered.json'], FS);
    expect(exitCode).toBe(1);
    expect(stdout).toContain('FAILED: tampered.json does not verify');
    expect(stdout).toMatch(/first broken link: seq 4 \(HASH_MISMATCH\)/);
    expect(stdout).toContain('BUNDLE_SIGNATURE_INVALID');
  });

  it('pins the hub key with --public-key', () => {
    const pinned = runVerifyCli(['report.json', '--public-key', 'hub.pem'], FS);
    expect(pinned.exitCode).toBe(0);
    expect(pinned.stdout).toContain('(matches --public-key)');
    const wrong = runVerifyCli(['--public-key', 'other.pem', 'report.json'], FS);
    expect(wrong.exitCode).toBe(1);
    expect(wrong.stdout).toContain('SIGNER_NOT_TRUSTED');
  });

  it('prints machine-readable JSON with --json', () => {
    const ok = runVerifyCli(['report.json', '--json', '--public-key', 'hub.pem'], FS);
    expect(ok.exitCode).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      file: 'report.json',
      ok: true,
      problems: [],
      summary: { records: 6, headSeq: 6, signerPinned: true },
      pinnedKeyId: publicKeyFingerprint(HUB),
    });
    const bad = runVerifyCli(['tampered.json', '--json'], FS);
    expect(bad.exitCode).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, firstBroken: { seq: 4, code: 'HASH_MISMATCH' } });
    const unreadable = runVerifyCli(['missing.json', '--json'], FS);
    expect(unreadable.exitCode).toBe(2);
    expect(JSON.parse(unreadable.stdout)).toMatchObject({ ok: false, error: 'INPUT_ERROR' });
  });

  it.each<[string, string[], RegExp]>([
    ['a missing file', ['missing.json'], /cannot read report missing.json: ENOENT/],
    ['invalid JSON', ['broken.json'], /broken.json is not JSON/],
    ['JSON that is not a bundle', ['other.json'], /not a Tessera audit bundle: format is missing/],
    ['an unreadable key file', ['report.json', '--public-key', 'nokey.pem'], /cannot read public key file nokey.pem/],
    [
      'a key file that is not a key',
      ['report.json', '--public-key', 'junk.pem'],
      /junk.pem: cannot read the public key/,
    ],
    ['no argument', [], /missing required argument 'report'/],
    ['an unknown option', ['report.json', '--online'], /unknown option '--online'/],
  ])('exits 2 on %s', (_label, argv, message) => {
    const { stderr, exitCode } = runVerifyCli(argv, FS);
    expect(exitCode).toBe(2);
    expect(stderr).toMatch(message);
  });

  it('prints help and exits 0', () => {
    const { stdout, exitCode } = runVerifyCli(['--help'], FS);
    expect(exitCode).toBe(0);
    expect(stdout).toContain('Usage: tessera-verify');
    expect(stdout).toContain('Exit status: 0 intact, 1 verification failed, 2 unreadable or malformed input.');
  });

  it('reads real files by default', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-verify-'));
    const report = join(dir, 'report.json');
    try {
      writeFileSync(report, JSON.stringify(BUNDLE));
      expect(runVerifyCli([report]).exitCode).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
