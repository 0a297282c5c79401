import { existsSync, readFileSync, statSync } from 'node:fs';
import { selectBackend } from '@tessera/ml';
import { SILO_API } from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';
import { auditedStudyTransport, pinHubAuditKey } from '../audit/agent-audit.command';
import { assertAgentFaultInjectionAllowed } from '../faults/fault-point.util';
import { HubClock } from '../hub/hub-clock';
import { SiloSession } from '../hub/silo-session';
import { SiloStudyTransport } from '../hub/study-transport';
import { loadPolicy } from '../policy/approval-policy';
import { SiloPrivacyLedger, type PrivacyCap } from '../privacy/silo-privacy-ledger';
import { SecAggParticipant } from '../secagg/secagg-participant';
import { SecAggStateStore } from '../secagg/secagg-state-store';
import { HttpSecAggTransport } from '../secagg/secagg-transport';
import type { AgentState } from '../state/agent-state';
import { ApprovalStore } from '../state/approval-store';
import { ReceiptStore } from '../state/receipt-store';
import { ReleaseStore } from '../state/release-store';
import { StudyDatasets } from '../training/study-datasets';
import { AgentDaemon } from './agent-daemon';
import { plainDisplay, type ProgressDisplay } from './progress-display';
import { ReleaseReconciler } from './release-reconciler';
import { TaskExecutor, type StepLine } from './task-executor';

// `tessera-agent run`'s daemon: loaded by the command when it runs (run.command.ts), so the agent's other commands
// start without TensorFlow.js and the training code.

export interface RunOptions {
  dataFile?: string;
  policyFile?: string;
  pollWaitSeconds: number;
  exitAfterStudy?: string;
  /** The silo's own privacy cap across all studies (TESSERA_PRIVACY_CAP_EPSILON / _DELTA). */
  privacyCap?: PrivacyCap;
  /** Progress bars in a terminal, plain lines elsewhere (default: plain lines through `write`). */
  display?: ProgressDisplay;
  stop: AbortSignal;
}

/** `time study round N: message`, one line per step; never a data value. */
export function formatStepLine(line: StepLine, now: Date): string {
  return `${now.toISOString()} ${line.study}${line.round === undefined ? '' : ` round ${line.round}`}: ${line.message}`;
}

/** `tessera-agent run`: checks its inputs, then runs the daemon until stopped. Resolves with the exit code. */
export async function runDaemon(
  state: AgentState,
  options: RunOptions,
  write: (line: string) => void,
): Promise<number> {
  assertAgentFaultInjectionAllowed();
  if (options.dataFile === undefined) {
    throw new AgentError(AgentErrorCode.USAGE, "give the silo's data file with --data <file.csv> or TESSERA_DATA_FILE");
  }
  const dataFile = options.dataFile;
  if (!existsSync(dataFile) || !statSync(dataFile).isFile()) {
    throw new AgentError(AgentErrorCode.USAGE, `the data file ${dataFile} does not exist`);
  }
  const policy = options.policyFile === undefined ? undefined : loadPolicy(options.policyFile);
  const display = options.display ?? plainDisplay(write);
  const log = (line: StepLine) => display.line(formatStepLine(line, new Date()) + '\n');
  const info = (message: string) => log({ study: 'agent', message });
  // Warns once when this host's clock and the hub's differ by more than 30 s (Date headers and tasks).
  const hubClock = new HubClock(info);
  const session = new SiloSession(state, undefined, hubClock);

  const backend = await selectBackend();
  const { record } = session.current;
  info(`silo ${record.siloName} (${record.siloId}), hub ${record.hubSiloUrl}, tfjs backend ${backend}`);
  info(
    options.privacyCap
      ? `privacy cap across all studies: ε = ${options.privacyCap.epsilon} at δ = ${options.privacyCap.delta}`
      : "no privacy cap configured (TESSERA_PRIVACY_CAP_EPSILON): only the studies' own targets apply",
  );
  info(
    `data file ${dataFile}; ${policy === undefined ? 'no approval policy: every study waits for a steward' : `approval policy ${options.policyFile}`}`,
  );

  // Audit (apps/agent/src/audit): every exchange with the hub also goes to the agent's own hash-chained log,
  // verified here first (a broken chain stops the agent); receipts are checked against the pinned hub key.
  const transport = auditedStudyTransport(state, new SiloStudyTransport(session), 'policy', info);
  await pinHubAuditKey(state, session, transport.log, info);
  const approvals = new ApprovalStore(state.root);
  const receipts = new ReceiptStore(state.root);
  const releases = new ReleaseStore(state.root);
  const executor = new TaskExecutor({
    transport,
    approvals,
    receipts,
    releases,
    // The data file is a CSV of records, or an image study's manifest (its paths are relative to the file's folder).
    datasets: new StudyDatasets(() => readFileSync(dataFile, 'utf8'), info, dataFile),
    privacy: new SiloPrivacyLedger(state.root, options.privacyCap),
    log,
    // Under secure aggregation: signed with the silo's current enrolled key, state in <state dir>/secagg.
    secureAggregation: (task) =>
      new SecAggParticipant({
        transport: new HttpSecAggTransport(session, task),
        store: new SecAggStateStore(state.root, task),
        participantId: session.siloId,
        identityKeyPem: session.current.privateKeyPem,
      }),
  });
  const daemon = new AgentDaemon(
    {
      transport,
      executor,
      // Through the audited transport: a receipt the hub answers a re-sent release with goes to the audit log.
      reconciler: new ReleaseReconciler({ transport, receipts, releases, log }),
      approvals,
      renewIfDue: () => session.renewIfDue(),
      log,
      hubClock,
      stop: options.stop,
      onTaskDone: (task, study, outcome) => display.taskDone(task, study, outcome),
      // The lightest mutual-TLS call: tells the hub during a long task that the agent is alive, and which task it is.
      heartbeat: async () => {
        await session.request('GET', SILO_API.me);
      },
    },
    {
      pollWaitSeconds: options.pollWaitSeconds,
      ...(options.exitAfterStudy === undefined ? {} : { exitAfterStudy: options.exitAfterStudy }),
      ...(policy === undefined ? {} : { policy }),
    },
  );
  try {
    return await daemon.run();
  } finally {
    display.stop();
  }
}
