import { PRIVACY_AUDIT_DEFAULTS, type PrivacyAuditFlags } from '../privacy-audit/privacy-audit-flags';
import type { RegisterAgentCommand } from './agent-command';

/** `tessera-agent privacy-audit`: the empirical audit of apps/agent/src/privacy-audit; needs no hub. */
export const registerPrivacyAuditCommand: RegisterAgentCommand = (program, { io }) => {
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
      // The audit and its training code (TensorFlow.js) load here, not when any other command runs.
      const { privacyAuditCommand } = await import('../privacy-audit/privacy-audit.command.js');
      await privacyAuditCommand(opts, io.env, io.out, io.err);
    });
};
