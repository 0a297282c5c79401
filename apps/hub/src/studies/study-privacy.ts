import type { StudyPlan } from '@tessera/protocol';
import type { PrivacyCost } from './study.entity';

/**
 * The privacy price of a whole study, computed before approval so stewards approve the exact mechanism.
 * Plans without differential privacy cost nothing measurable and return null (stated as such to stewards).
 * DP plans are priced by the privacy module.
 */
export function priceStudy(plan: StudyPlan): PrivacyCost | null {
  if (plan.privacy.mode === 'none') return null;
  throw new Error(`privacy mode ${plan.privacy.mode} is not available yet`);
}
