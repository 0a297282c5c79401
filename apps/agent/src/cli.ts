import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { AgentError, AgentErrorCode, exitCodeOf } from './agent.error';
import { enroll, parseBundle } from './commands/enroll.command';
import { parsePollWait, runDaemon } from './commands/run.command';
import {
  approveStudy,
  findStudy,
  formatStudy,
  formatStudyTable,
  listStudies,
  rejectStudy,
} from './commands/studies.command';
import {
  auditedStudyTransport,
  exportAgentAudit,
  formatAuditCheck,
  verifyAgentAudit,
} from './audit/agent-audit.command';
import { formatStatus, status } from './commands/status.command';
import { SiloSession } from './hub/silo-session';
import { SiloStudyTransport } from './hub/study-transport';
import { progressDisplayFor } from './run/progress-display';
import {
  PRIVACY_AUDIT_DEFAULTS,
  privacyAuditCommand,
  type PrivacyAuditFlags,
} from './privacy-audit/privacy-audit.command';
import { formatBudget, SiloPrivacyLedger, type PrivacyCap } from './privacy/silo-privacy-ledger';
import { AgentState } from './state/agent-state';
import { ApprovalStore } from './state/approval-store';

export interface CliIo {
  /** The terminal behind `out`, when there is one: `run` then draws progress bars. */
  terminal?: NodeJS.WriteStream;
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  /** Registers a handler for SIGTERM/SIGINT; returns a function that unregisters it. Defaults to the process's. */
  onStopSignal?: (handler: () => void) => () => void;
}

function processStopSignal(handler: () => void): () => void {
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}

const DEFAULT_STATE_DIR = '.tessera/agent';

function readBundleArg(value: string | undefined): string {
  if (!value) {
    throw new AgentError(
      AgentErrorCode.USAGE,
      'give the enrollment bundle with --bundle <file or text> or TESSERA_ENROLLMENT_BUNDLE',
    );
  }
  const path = value.startsWith('@') ? value.slice(1) : value;
  return existsSync(path) ? readFileSync(path, 'utf8') : value;
}

/** Builds the `tessera-agent` program; flags win over environment variables (the Docker image uses the latter). */
export function buildProgram(io: CliIo, result: { exitCode: number }): Command {
  const program = new Command('tessera-agent')
    .description("Tessera's agent: runs inside a hospital, next to its data; only ever connects out to the hub.")
    .option(
      '--state-dir <dir>',
      'where the agent keeps its key, certificate, ledger and audit log (env TESSERA_STATE_DIR)',
    )
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .exitOverride()
    .showHelpAfterError();

  const stateOf = () =>
    new AgentState(
      resolve(program.opts<{ stateDir?: string }>().stateDir ?? io.env.TESSERA_STATE_DIR ?? DEFAULT_STATE_DIR),
    );

  program
    .command('enroll')
    .description('enroll with the hub using a one-time bundle: makes a key pair here and obtains a certificate')
    .option('--bundle <file-or-text>', 'the enrollment bundle, as a file or its text (env TESSERA_ENROLLMENT_BUNDLE)')
    .option('--force', 'replace an existing identity')
    .action(async (opts: { bundle?: string; force?: boolean }) => {
      const bundle = parseBundle(readBundleArg(opts.bundle ?? io.env.TESSERA_ENROLLMENT_BUNDLE));
      const record = await enroll(stateOf(), bundle, { force: opts.force ?? false });
      io.out(
        `enrolled as silo ${record.siloName} (${record.siloId}); certificate ${record.serial} valid until ${record.notAfter}\n`,
      );
    });

  program
    .command('status')
    .description("show this agent's identity, certificate expiry and whether the hub answers it")
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const s = await status(stateOf());
      io.out(opts.json ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s) + '\n');
      if (!s.hub.reachable) result.exitCode = 1;
    });

  program
    .command('renew')
    .description('renew the certificate now if a third or less of its lifetime remains (or always, with --force)')
    .option('--force', 'renew even if not due')
    .action(async (opts: { force?: boolean }) => {
      const session = new SiloSession(stateOf());
      const renewed = await session.renewIfDue(opts.force ?? false);
      const { serial, notAfter } = session.current.record;
      io.out(
        renewed
          ? `renewed: certificate ${serial} valid until ${notAfter}\n`
          : `not due: certificate ${serial} valid until ${notAfter}\n`,
      );
    });

  const studyContext = () => {
    const state = stateOf();
    // Audit: a steward's approvals and rejections go to the agent's own log (apps/agent/src/audit).
    const transport = auditedStudyTransport(state, new SiloStudyTransport(new SiloSession(state)), 'steward');
    return { transport, approvals: new ApprovalStore(state.root) };
  };
  const studies = program.command('studies').description('studies this silo is invited to, and its decisions on them');

  studies
    .command('list')
    .description("list the studies: id, name, status, plan version, plan hash prefix and this silo's decision")
    .action(async () => {
      const { transport, approvals } = studyContext();
      io.out(formatStudyTable(await listStudies(transport, approvals)) + '\n');
    });

  studies
    .command('show')
    .description("show a study's plan in words with its full hash, as a steward reviews it")
    .argument('<id>', 'study id (or a unique prefix of at least 8 characters)')
    .option('--json', 'print the raw plan as JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const { transport, approvals } = studyContext();
      const r = await findStudy(transport, approvals, id);
      io.out((opts.json ? JSON.stringify(r.study.plan, null, 2) : formatStudy(r)) + '\n');
    });

  studies
    .command('approve')
    .description("approve the study's current plan; the agent sends the hash it computed from the plan itself")
    .argument('<id>', 'study id (or a unique prefix of at least 8 characters)')
    .option('--plan-hash <sha256>', 'refuse unless the current plan has exactly this hash (the one you read)')
    .action(async (id: string, opts: { planHash?: string }) => {
      const { transport, approvals } = studyContext();
      const r = await approveStudy(
        transport,
        approvals,
        id,
        opts.planHash === undefined ? {} : { planHash: opts.planHash },
      );
      io.out(
        `approved ${r.study.plan.name} (${r.study.studyId}) plan version ${r.study.planVersion}, hash ${r.computedHash}\n`,
      );
    });

  studies
    .command('reject')
    .description("reject the study's current plan")
    .argument('<id>', 'study id (or a unique prefix of at least 8 characters)')
    .requiredOption('--reason <text>', 'why (recorded at the hub and shown to its administrators)')
    .action(async (id: string, opts: { reason: string }) => {
      const { transport, approvals } = studyContext();
      const r = await rejectStudy(transport, approvals, id, opts.reason);
      io.out(`rejected ${r.study.plan.name} (${r.study.studyId}) plan version ${r.study.planVersion}\n`);
    });

  // ---- audit: the agent's own hash-chained log (apps/agent/src/audit) ----
  const audit = program
    .command('audit')
    .description("this agent's own audit log (audit.log.jsonl in the state directory)");
  audit
    .command('export')
    .description("write the agent's records, the hub's receipts and the silo id as JSON, for an auditor")
    .option('--out <file>', 'write to this file (default: standard output)')
    .action((opts: { out?: string }) => {
      const text = JSON.stringify(exportAgentAudit(stateOf()), null, 2) + '\n';
      if (opts.out === undefined) io.out(text);
      else {
        writeFileSync(resolve(opts.out), text, { mode: 0o600 });
        io.out(
          `wrote ${resolve(opts.out)}; compare it with the hub's report: tessera-verify report.json --reconcile ${opts.out}\n`,
        );
      }
    });
  audit
    .command('verify')
    .description('check the local hash chain, record by record')
    .action(() => {
      const check = verifyAgentAudit(stateOf());
      io.out(formatAuditCheck(check) + '\n');
      if (!check.ok) result.exitCode = 1;
    });
  // ---- end audit ----

  program
    .command('run')
    .description('run the agent: approve by policy, wait for tasks, train and evaluate on local data, upload updates')
    .option('--data <file.csv>', "the silo's data file (env TESSERA_DATA_FILE)")
    .option('--policy <file.json>', 'approval policy for studies within fixed limits (env TESSERA_POLICY_FILE)')
    .option('--poll-wait <seconds>', 'long-poll wait for tasks, 1..30', '20')
    .option('--exit-after-study <id>', 'exit once this study has ended (1 if this silo failed it)')
    .option('--privacy-cap-epsilon <e>', "this silo's cap on ε across all studies (env TESSERA_PRIVACY_CAP_EPSILON)")
    .option(
      '--privacy-cap-delta <d>',
      'the δ at which the cap is measured (env TESSERA_PRIVACY_CAP_DELTA, default 1e-5)',
    )
    .action(
      async (opts: {
        data?: string;
        policy?: string;
        pollWait: string;
        exitAfterStudy?: string;
        privacyCapEpsilon?: string;
        privacyCapDelta?: string;
      }) => {
        const stopper = new AbortController();
        const unregister = (io.onStopSignal ?? processStopSignal)(() => {
          if (!stopper.signal.aborted) io.out(`${new Date().toISOString()} agent: stopping after the current step\n`);
          stopper.abort();
        });
        try {
          const dataFile = opts.data ?? io.env.TESSERA_DATA_FILE;
          const policyFile = opts.policy ?? io.env.TESSERA_POLICY_FILE;
          result.exitCode = await runDaemon(
            stateOf(),
            {
              ...(dataFile ? { dataFile: resolve(dataFile) } : {}),
              ...(policyFile ? { policyFile: resolve(policyFile) } : {}),
              pollWaitSeconds: parsePollWait(opts.pollWait),
              ...(opts.exitAfterStudy ? { exitAfterStudy: opts.exitAfterStudy } : {}),
              ...(io.terminal ? { display: progressDisplayFor(io.terminal, io.out, io.env) } : {}),
              ...capOption(
                opts.privacyCapEpsilon ?? io.env.TESSERA_PRIVACY_CAP_EPSILON,
                opts.privacyCapDelta ?? io.env.TESSERA_PRIVACY_CAP_DELTA,
              ),
              stop: stopper.signal,
            },
            io.out,
          );
        } finally {
          unregister();
        }
      },
    );

  program
    .command('budget')
    .description("show the privacy this silo's data has spent, per study, and against the silo's own cap")
    .option('--json', 'machine-readable output')
    .option('--privacy-cap-epsilon <e>', 'cap on ε across all studies (env TESSERA_PRIVACY_CAP_EPSILON)')
    .option('--privacy-cap-delta <d>', 'δ of the cap (env TESSERA_PRIVACY_CAP_DELTA, default 1e-5)')
    .action((opts: { json?: boolean; privacyCapEpsilon?: string; privacyCapDelta?: string }) => {
      const { privacyCap } = capOption(
        opts.privacyCapEpsilon ?? io.env.TESSERA_PRIVACY_CAP_EPSILON,
        opts.privacyCapDelta ?? io.env.TESSERA_PRIVACY_CAP_DELTA,
      );
      const report = new SiloPrivacyLedger(stateOf().root, privacyCap).report();
      io.out(opts.json ? JSON.stringify(report, null, 2) + '\n' : formatBudget(report) + '\n');
    });

  program
    .command('privacy-audit')
    .description(
      "empirical privacy audit: run this agent's DP pipeline many times with and without a canary record on the data " +
        'file, and certify a lower bound on ε (docs/privacy.md, "Empirical audit"); needs no hub and no enrollment',
    )
    .option('--data <file.csv>', "the silo's data file (env TESSERA_DATA_FILE)")
    .option('--runs <n>', 'runs with the canary, and as many without', PRIVACY_AUDIT_DEFAULTS.runs)
    .option('--canary <kind>', 'duplicate, outlier, mislabeled or held-out', PRIVACY_AUDIT_DEFAULTS.canary)
    .option('--epsilon <e>', "target ε of the audited one-round plan (the demo's)", PRIVACY_AUDIT_DEFAULTS.epsilon)
    .option(
      '--sampling-rate <q>',
      'DP-SGD sampling rate q of the plan (1: full batch)',
      PRIVACY_AUDIT_DEFAULTS.samplingRate,
    )
    .option('--confidence <c>', 'confidence of the certified bound', PRIVACY_AUDIT_DEFAULTS.confidence)
    .option(
      '--positive-control',
      'run an under-noised pipeline (σ for ε = 100) against the same claim: must be detected',
    )
    .option('--json <out.json>', 'also write the full result, every run included, to this file')
    .action(async (opts: PrivacyAuditFlags) => {
      await privacyAuditCommand(opts, io.env, io.out, io.err);
    });

  return program;
}

/** The silo's privacy cap from flags or environment: ε > 0, 0 < δ < 1 (δ defaults to 1e-5). */
export function capOption(epsilon: string | undefined, delta: string | undefined): { privacyCap?: PrivacyCap } {
  if (epsilon === undefined || epsilon === '') return {};
  const e = Number(epsilon);
  const d = delta === undefined || delta === '' ? 1e-5 : Number(delta);
  if (!Number.isFinite(e) || e <= 0) {
    throw new AgentError(AgentErrorCode.USAGE, `the privacy cap ε must be a number above 0 (got "${epsilon}")`);
  }
  if (!Number.isFinite(d) || d <= 0 || d >= 1) {
    throw new AgentError(AgentErrorCode.USAGE, `the privacy cap δ must be a number between 0 and 1 (got "${delta}")`);
  }
  return { privacyCap: { epsilon: e, delta: d } };
}

/** Runs the CLI; resolves with the exit code instead of exiting, so tests can call it. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const result = { exitCode: 0 };
  const program = buildProgram(io, result);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return result.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof AgentError) {
      io.err(`tessera-agent: ${err.message}\n`);
      return exitCodeOf(err.code);
    }
    io.err(`tessera-agent: unexpected failure: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}
