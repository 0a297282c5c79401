import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { exportAgentAudit, formatAuditCheck, verifyAgentAudit } from '../audit/agent-audit.command';
import type { RegisterAgentCommand } from './agent-command';

/** `tessera-agent audit export|verify`: the agent's own hash-chained log (apps/agent/src/audit). */
export const registerAuditCommand: RegisterAgentCommand = (program, { io, result, stateOf }) => {
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
        // The export names the silo and its studies: readable by this user only.
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
};
