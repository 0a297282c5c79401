import { existsSync, readFileSync } from 'node:fs';
import { isImageSchema, type SiloStudy } from '@tessera/protocol';
import { z } from 'zod';
import { AgentError, AgentErrorCode } from '../agent.error';

/**
 * A silo's standing instructions for studies its steward need not read one by one. Every field is required and
 * unknown fields are refused, so a typo cannot silently widen what is approved.
 */
export const ApprovalPolicy = z
  .object({
    autoApprove: z
      .object({
        /** Model architectures that may be trained on this silo's data. */
        models: z.array(z.enum(['logistic-regression', 'mlp', 'network'])).min(1),
        /** Every feature column and the label column of a plan must be listed here. */
        allowedColumns: z.array(z.string().min(1)).min(1),
        /** The most federated rounds (so the most updates this silo sends). */
        maxRounds: z.number().int().min(1),
        /** When true, a plan without differential privacy always waits for a steward. */
        privacyRequired: z.boolean(),
        /** Cap on the study's total ε for plans with DP (both the plan's target and the hub's derived cost). */
        maxEpsilon: z.number().finite().positive(),
      })
      .strict(),
  })
  .strict();
export type ApprovalPolicy = z.infer<typeof ApprovalPolicy>;

/** Parses a policy file's text; errors name the file and every offending field. */
export function parsePolicy(text: string, source: string): ApprovalPolicy {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new AgentError(AgentErrorCode.POLICY_INVALID, `policy file ${source} is not JSON: ${(err as Error).message}`);
  }
  const parsed = ApprovalPolicy.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const unknown = issue.code === 'unrecognized_keys' ? ` (${issue.keys.join(', ')})` : '';
      return `${issue.path.join('.') || '(top level)'}: ${issue.message}${unknown}`;
    });
    throw new AgentError(AgentErrorCode.POLICY_INVALID, `policy file ${source} is invalid: ${problems.join('; ')}`);
  }
  return parsed.data;
}

export function loadPolicy(file: string): ApprovalPolicy {
  if (!existsSync(file)) throw new AgentError(AgentErrorCode.POLICY_INVALID, `policy file ${file} does not exist`);
  return parsePolicy(readFileSync(file, 'utf8'), file);
}

/** Whether a study's plan stays within every limit of the policy; otherwise why not, one reason per limit. */
export interface PolicyVerdict {
  approve: boolean;
  reasons: string[];
}

/**
 * Pure: decides whether the policy approves a study's current plan. Every limit is checked and every breach is
 * reported, so the steward sees all of them at once.
 */
export function policyVerdict(policy: ApprovalPolicy, study: Pick<SiloStudy, 'plan' | 'privacyCost'>): PolicyVerdict {
  const limits = policy.autoApprove;
  const { plan } = study;
  const reasons: string[] = [];
  if (!limits.models.includes(plan.model.kind)) {
    reasons.push(`model ${plan.model.kind} is not among the allowed models (${limits.models.join(', ')})`);
  }
  const columns = isImageSchema(plan.schema)
    ? [plan.schema.fileColumn, plan.schema.label.column]
    : [...plan.schema.features.map((f) => f.name), plan.schema.label.column];
  const outside = columns.filter((c) => !limits.allowedColumns.includes(c));
  if (outside.length > 0) reasons.push(`columns not allowed by the policy: ${outside.join(', ')}`);
  if (plan.training.rounds > limits.maxRounds) {
    reasons.push(`${plan.training.rounds} rounds exceed the policy's maximum of ${limits.maxRounds}`);
  }
  if (plan.privacy.mode === 'none') {
    if (limits.privacyRequired) reasons.push('the plan has no differential privacy, which the policy requires');
  } else {
    const epsilon = Math.max(plan.privacy.targetEpsilon, study.privacyCost?.epsilon ?? 0);
    if (!(epsilon <= limits.maxEpsilon)) {
      reasons.push(`ε = ${epsilon} exceeds the policy's maximum of ${limits.maxEpsilon}`);
    }
  }
  return { approve: reasons.length === 0, reasons };
}
