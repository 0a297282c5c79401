import { DEFAULT_AUDIT_CONFIDENCE, DEFAULT_AUDIT_EPSILON, DEMO_SAMPLING_RATE } from './audit-plan.util';

// The flags of `tessera-agent privacy-audit` and their defaults, apart from the audit itself: the command registers
// them without loading TensorFlow.js (privacy-audit.command.ts loads when the command runs).

/** The flags of `tessera-agent privacy-audit`, as commander hands them over (strings). */
export interface PrivacyAuditFlags {
  data?: string;
  runs: string;
  canary: string;
  epsilon: string;
  samplingRate: string;
  confidence: string;
  positiveControl?: boolean;
  json?: string;
}

export const PRIVACY_AUDIT_DEFAULTS = {
  runs: '100',
  canary: 'duplicate',
  epsilon: String(DEFAULT_AUDIT_EPSILON),
  samplingRate: String(DEMO_SAMPLING_RATE),
  confidence: String(DEFAULT_AUDIT_CONFIDENCE),
} as const;
