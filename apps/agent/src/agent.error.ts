/** Why an agent command failed; each maps to a process exit code. */
export enum AgentErrorCode {
  USAGE = 'USAGE',
  NOT_ENROLLED = 'NOT_ENROLLED',
  ALREADY_ENROLLED = 'ALREADY_ENROLLED',
  HUB_UNREACHABLE = 'HUB_UNREACHABLE',
  HUB_NOT_TRUSTED = 'HUB_NOT_TRUSTED',
  HUB_REFUSED = 'HUB_REFUSED',
  STATE_CORRUPT = 'STATE_CORRUPT',
}

export class AgentError extends Error {
  constructor(
    readonly code: AgentErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AgentError';
  }
}

/** 2 for a mistake in how the command was called, 1 for anything that went wrong while doing it. */
export function exitCodeOf(code: AgentErrorCode): number {
  switch (code) {
    case AgentErrorCode.USAGE:
      return 2;
    case AgentErrorCode.NOT_ENROLLED:
    case AgentErrorCode.ALREADY_ENROLLED:
    case AgentErrorCode.HUB_UNREACHABLE:
    case AgentErrorCode.HUB_NOT_TRUSTED:
    case AgentErrorCode.HUB_REFUSED:
    case AgentErrorCode.STATE_CORRUPT:
      return 1;
    default: {
      const unmapped: never = code;
      throw new Error(`unmapped agent error ${String(unmapped)}`);
    }
  }
}
