import { formatBudget, SiloPrivacyLedger } from '../privacy/silo-privacy-ledger';
import type { RegisterAgentCommand } from './agent-command';
import { capOption } from './privacy-cap.util';

/** `tessera-agent budget`: the privacy this silo's data has spent, per study and against its own cap. */
export const registerBudgetCommand: RegisterAgentCommand = (program, { io, stateOf }) => {
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
};
