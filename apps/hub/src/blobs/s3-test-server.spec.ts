import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { missingSwiftBinaries, s3SuiteAvailability, SWIFT_BINARIES } from './s3-test-server.test-util';

/** The S3 suites may skip only on a developer's machine without Swift; CI must fail instead (issue 18). */
describe('when the S3 test server is not installed', () => {
  const saved = { PATH: process.env.PATH, CI: process.env.CI };
  const empty = mkdtempSync(`${tmpdir()}/tessera-no-swift-`);
  afterAll(() => rmSync(empty, { recursive: true, force: true }));
  afterEach(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it('skips outside CI, saying what is missing and how to install it', () => {
    process.env.PATH = empty;
    delete process.env.CI;
    expect(missingSwiftBinaries()).toEqual([...SWIFT_BINARIES]);
    const availability = s3SuiteAvailability();
    expect(availability.run).toBe(false);
    expect(!availability.run && availability.reason).toContain(
      'apt-get install swift-proxy swift-account swift-container swift-object',
    );
  });

  it('fails under CI instead of skipping', () => {
    process.env.PATH = empty;
    process.env.CI = 'true';
    expect(() => s3SuiteAvailability()).toThrow(/^CI: the S3 integration tests need a real S3-protocol server/);
  });

  // Outside CI a machine may lack Swift (the cases above cover it); CI installs it, so there this must hold.
  it.skipIf(missingSwiftBinaries().length > 0 && process.env.CI !== 'true')('runs where Swift is installed', () => {
    expect(missingSwiftBinaries()).toEqual([]);
    expect(s3SuiteAvailability()).toEqual({ run: true });
  });
});
