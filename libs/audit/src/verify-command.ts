import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { publicKeyFingerprint, SigningKeyError, toPublicKey } from './ed25519-signing';
import { BundleProblemCode, verifyBundle, type AuditBundle, type BundleVerification } from './report-bundle';
import { describeAgentExportProblem, reconcileSiloLog, type SiloReconciliation } from './silo-reconciliation';

/** What the verifier may read: files named on the command line. Injected so tests need no disk. */
export interface VerifyCliIo {
  /** Returns the file's text; throws (any error) when it cannot be read. */
  readFile(path: string): string;
}

export interface VerifyCliResult {
  stdout: string;
  stderr: string;
  /** 0 intact, 1 verification failed, 2 unreadable or malformed input (or a usage error). */
  exitCode: 0 | 1 | 2;
}

const nodeFiles: VerifyCliIo = { readFile: (path) => readFileSync(path, 'utf8') };

class InputError extends Error {}

function readText(io: VerifyCliIo, path: string, what: string): string {
  try {
    return io.readFile(path);
  } catch (error) {
    throw new InputError(`cannot read ${what} ${path}: ${(error as Error).message}`);
  }
}

function describe(path: string, result: BundleVerification): string {
  const s = result.summary;
  const lines: string[] = [];
  if (result.ok && s !== undefined) {
    lines.push(`OK: ${path} is intact`);
  } else {
    lines.push(`FAILED: ${path} does not verify`);
    if (result.firstBroken !== undefined) {
      lines.push(
        `  first broken link: seq ${result.firstBroken.seq} (${result.firstBroken.code}): ${result.firstBroken.message}`,
      );
    }
    for (const p of result.problems)
      lines.push(`  - ${p.code}${p.seq === undefined ? '' : ` at seq ${p.seq}`}: ${p.message}`);
  }
  if (s !== undefined) {
    lines.push(`  records:     ${s.records} (seq ${s.fromSeq}..${s.headSeq})`);
    lines.push(`  head hash:   ${s.headHash}${result.ok ? '' : ' (as stated in the report, not verified)'}`);
    lines.push(`  checkpoints: ${s.checkpointsVerified} of ${s.checkpointsTotal} verified`);
    lines.push(
      `  signer key:  sha256:${s.signerKeyId} ${s.signerPinned ? '(matches --public-key)' : '(not pinned: compare with the hub key fingerprint you trust)'}`,
    );
    lines.push(`  generated:   ${s.generatedAt}`);
    lines.push(
      s.stateItems === undefined
        ? '  state:       not stated by the hub (older bundle): changes without a record cannot be detected'
        : `  state:       ${s.stateItems} state change(s) stated by the hub, each checked for its record`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function describeReconciliation(path: string, r: SiloReconciliation): string {
  const lines: string[] = [];
  const first = r.discrepancies[0];
  if (first === undefined) {
    lines.push(`OK: ${path} is consistent with the report (${r.matched} upload(s) matched)`);
  } else {
    lines.push(`FAILED: ${path} does not reconcile with the report: ${first.code}: ${first.message}`);
    for (const d of r.discrepancies.slice(1)) lines.push(`  - ${d.code}: ${d.message}`);
  }
  lines.push(`  studies:     ${r.studyIds.join(', ') || '(none)'}`);
  if (r.afterBundle > 0)
    lines.push(`  later:       ${r.afterBundle} upload(s) accepted after the report's last record`);
  return `${lines.join('\n')}\n`;
}

/** Reads and reconciles the agent export; throws InputError when it is unreadable or not an export. */
function reconcileFile(io: VerifyCliIo, agentPath: string, bundle: AuditBundle): SiloReconciliation {
  const text = readText(io, agentPath, 'agent export');
  let exported: unknown;
  try {
    exported = JSON.parse(text);
  } catch (error) {
    throw new InputError(`${agentPath} is not JSON: ${(error as Error).message}`);
  }
  const problem = describeAgentExportProblem(exported);
  if (problem !== null) throw new InputError(`${agentPath} is not a Tessera agent audit export: ${problem}`);
  return reconcileSiloLog(exported, bundle);
}

function verifyFile(
  io: VerifyCliIo,
  reportPath: string,
  opts: { json?: boolean; publicKey?: string; reconcile?: string },
): VerifyCliResult {
  const json = opts.json === true;
  const fail2 = (message: string): VerifyCliResult => ({
    stdout: json ? `${JSON.stringify({ ok: false, error: 'INPUT_ERROR', message }, null, 2)}\n` : '',
    stderr: `tessera-verify: ${message}\n`,
    exitCode: 2,
  });
  try {
    let trustedPublicKey: string | undefined;
    if (opts.publicKey !== undefined) {
      trustedPublicKey = readText(io, opts.publicKey, 'public key file');
      try {
        toPublicKey(trustedPublicKey);
      } catch (error) {
        if (error instanceof SigningKeyError) throw new InputError(`${opts.publicKey}: ${error.message}`);
        throw error;
      }
    }
    const text = readText(io, reportPath, 'report');
    let bundle: unknown;
    try {
      bundle = JSON.parse(text);
    } catch (error) {
      throw new InputError(`${reportPath} is not JSON: ${(error as Error).message}`);
    }
    const result = verifyBundle(bundle, trustedPublicKey === undefined ? {} : { trustedPublicKey });
    const unreadable = result.problems.find(
      (p) => p.code === BundleProblemCode.Malformed || p.code === BundleProblemCode.UnsupportedFormat,
    );
    if (unreadable !== undefined)
      throw new InputError(`${reportPath} is not a Tessera audit bundle: ${unreadable.message}`);
    const pinnedKeyId = trustedPublicKey === undefined ? undefined : publicKeyFingerprint(trustedPublicKey);
    // Reconciliation trusts the bundle's records and key: only a bundle that verified is reconciled against.
    const reconciliation =
      opts.reconcile !== undefined && result.ok ? reconcileFile(io, opts.reconcile, bundle as AuditBundle) : undefined;
    const ok = result.ok && (reconciliation?.ok ?? true);
    const stdout = json
      ? `${JSON.stringify(
          {
            file: reportPath,
            ...result,
            ...(pinnedKeyId === undefined ? {} : { pinnedKeyId }),
            ...(reconciliation === undefined ? {} : { reconciliation: { file: opts.reconcile, ...reconciliation } }),
          },
          null,
          2,
        )}\n`
      : describe(reportPath, result) +
        (reconciliation === undefined || opts.reconcile === undefined
          ? ''
          : describeReconciliation(opts.reconcile, reconciliation));
    return { stdout, stderr: '', exitCode: ok ? 0 : 1 };
  } catch (error) {
    if (error instanceof InputError) return fail2(error.message);
    throw error;
  }
}

/**
 * The `tessera-verify` command without process globals: `argv` is the user's arguments only (no node, no script).
 * Verifies a report bundle offline (no network) as docs/audit-format.md describes.
 */
export function runVerifyCli(argv: readonly string[], io: VerifyCliIo = nodeFiles): VerifyCliResult {
  let stdout = '';
  let stderr = '';
  let result: VerifyCliResult | undefined;
  const program = new Command('tessera-verify')
    .description('Verify a Tessera audit report bundle offline: signature, hash chain and signed checkpoints.')
    .argument('<report>', 'the report bundle (JSON) exported by the hub')
    .option('--json', 'print the verification result as JSON')
    .option('--public-key <file>', 'PEM file of the hub public key to trust; a bundle signed by any other key fails')
    .option(
      '--reconcile <agent-export>',
      "compare a silo's audit export (tessera-agent audit export) with the report: receipts, uploads, acceptances",
    )
    .helpOption('-h, --help', 'show this help')
    .addHelpText(
      'after',
      '\nExit status: 0 intact, 1 verification failed, 2 unreadable or malformed input.' +
        '\nWith --reconcile: 0 only when the agent export is also consistent, 1 naming the first discrepancy.',
    )
    .exitOverride()
    .configureOutput({ writeOut: (s) => (stdout += s), writeErr: (s) => (stderr += s) })
    .action((report: string, opts: { json?: boolean; publicKey?: string; reconcile?: string }) => {
      result = verifyFile(io, report, opts);
    });
  try {
    program.parse([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help exits 0; every usage error (missing argument, unknown option) is "malformed input".
      return { stdout, stderr, exitCode: error.exitCode === 0 ? 0 : 2 };
    }
    throw error;
  }
  if (result === undefined) return { stdout, stderr: `${stderr}tessera-verify: nothing to do\n`, exitCode: 2 };
  return { stdout: stdout + result.stdout, stderr: stderr + result.stderr, exitCode: result.exitCode };
}
