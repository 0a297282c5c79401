import { AgentError, AgentErrorCode } from '../agent.error';
import type { PrivacyCap } from '../privacy/silo-privacy-ledger';

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
