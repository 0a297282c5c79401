/** Why an agent command failed; each maps to a process exit code. */
export enum AgentErrorCode {
  USAGE = 'USAGE',
  NOT_ENROLLED = 'NOT_ENROLLED',
  ALREADY_ENROLLED = 'ALREADY_ENROLLED',
  HUB_UNREACHABLE = 'HUB_UNREACHABLE',
  HUB_NOT_TRUSTED = 'HUB_NOT_TRUSTED',
  HUB_REFUSED = 'HUB_REFUSED',
  /** The hub no longer accepts this agent's certificate (revoked, superseded, expired) or the silo is suspended. */
  IDENTITY_REFUSED = 'IDENTITY_REFUSED',
  STATE_CORRUPT = 'STATE_CORRUPT',
  /** The approval policy file is missing, not JSON, or breaks its schema. */
  POLICY_INVALID = 'POLICY_INVALID',
  /** The plan a steward meant to approve is not the plan the hub holds now. */
  PLAN_MISMATCH = 'PLAN_MISMATCH',
  STUDY_NOT_FOUND = 'STUDY_NOT_FOUND',
}

export class AgentError extends Error {
  constructor(
    readonly code: AgentErrorCode,
    message: string,
    /** The hub's HTTP status, when the failure is the hub's answer. */
    readonly httpStatus?: number,
    /** The hub's error code (its answer's `error`, e.g. ROUND_CLOSED), when it named one: what callers branch on. */
    readonly hubCode?: string,
  ) {
    super(message);
    this.name = 'AgentError';
  }
}

/** 2 for a mistake in how the command was called, 1 for anything that went wrong while doing it. */
export function exitCodeOf(code: AgentErrorCode): number {
  switch (code) {
    case AgentErrorCode.USAGE:
    case AgentErrorCode.POLICY_INVALID:
      return 2;
    case AgentErrorCode.NOT_ENROLLED:
    case AgentErrorCode.ALREADY_ENROLLED:
    case AgentErrorCode.HUB_UNREACHABLE:
    case AgentErrorCode.HUB_NOT_TRUSTED:
    case AgentErrorCode.HUB_REFUSED:
    case AgentErrorCode.IDENTITY_REFUSED:
    case AgentErrorCode.STATE_CORRUPT:
    case AgentErrorCode.PLAN_MISMATCH:
    case AgentErrorCode.STUDY_NOT_FOUND:
      return 1;
    default: {
      const unmapped: never = code;
      throw new Error(`unmapped agent error ${String(unmapped)}`);
    }
  }
}
