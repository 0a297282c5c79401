/**
 * GET /api/silos/:id/privacy (admin, auditor): what every study has spent on one silo's data, from the hub's ledger
 * (docs/privacy.md, "One silo across studies").
 */
import type { StudyStatus } from './rounds';

/** One study the silo was invited to, with the hub's figure of what the study has spent on the silo's data. */
export interface SiloStudyPrivacyView {
  studyId: string;
  studyName: string;
  status: StudyStatus;
  /** 'none': the study trains without differential privacy (no guarantee, nothing to count). */
  mode: 'dp-sgd' | 'dp-fedavg' | 'none';
  /** What one unit of protection is: one record (DP-SGD) or the whole silo (DP-FedAvg); null without DP. */
  unit: 'record' | 'silo' | null;
  /** Whether the silo takes part (approved the version the study started with); false while awaiting approvals. */
  participant: boolean;
  /** ε spent at `delta`: the larger of the hub's charges and the silo's reports (0 before any charge; null without DP). */
  epsilon: number | null;
  /** ε the plan reaches when every planned round and release is spent (≤ target); null without DP or when unknown. */
  plannedEpsilon: number | null;
  /** The study's own target ε, for the whole study; null without DP. */
  targetEpsilon: number | null;
  delta: number | null;
  /** Training rounds and noisy evaluation releases charged (hub's figure); null for a plan of an earlier format. */
  trainingRounds: number | null;
  evaluationReleases: number | null;
  /** Reports of the silo that disagreed with the hub's charge. */
  disagreements: number;
}

/** How the page's total combines studies. */
export type SiloPrivacyComposition = 'basic';

export interface SiloPrivacyView {
  siloId: string;
  siloName: string;
  studies: SiloStudyPrivacyView[];
  /**
   * Basic sequential composition over the DP studies: ε = Σ εᵢ at δ = Σ δᵢ. A valid upper bound on what all the
   * studies together reveal about one unit (record or silo), usually loose: the agent's own total (an RDP sum of every
   * event, `tessera-agent budget`) is tighter. Units differ between studies (record vs silo), so a sum across a
   * record-level and a silo-level study bounds the record-level guarantee only.
   */
  total: {
    composition: SiloPrivacyComposition;
    epsilon: number;
    delta: number;
    /** Studies counted in the sum (those with DP). */
    studies: number;
    /** Studies that ran (or may run) on the silo's data without DP: no guarantee, not counted. */
    withoutPrivacy: number;
  };
  /**
   * The silo's own cap across studies lives in the agent's configuration (TESSERA_PRIVACY_CAP_EPSILON) and the agent
   * enforces it; the hub is not told it, so this is always null on this hub version.
   */
  cap: { epsilon: number; delta: number } | null;
}
