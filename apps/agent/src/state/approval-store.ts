import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Decision, Sha256Hex } from '@tessera/protocol';
import { z } from 'zod';
import { AgentError, AgentErrorCode } from '../agent.error';
import { writeFileAtomic } from './atomic-file.util';

/** This silo's own record of what it decided about a study: the agent trusts it, not the hub's copy. */
export const LocalDecision = z
  .object({
    planHash: Sha256Hex,
    planVersion: z.number().int().min(1),
    decision: Decision,
    decidedAt: z.string().datetime(),
    /** A data steward at the command line, or the silo's approval policy file. */
    decidedBy: z.enum(['steward', 'policy']),
  })
  .strict();
export type LocalDecision = z.infer<typeof LocalDecision>;

const ApprovalsFile = z.record(z.string().uuid(), LocalDecision);

/**
 * `approvals.json` in the state directory: studyId → the latest decision and the exact plan hash it covers. Written
 * atomically, so a crash never leaves a half-written approval. The agent trains only for a hash approved here.
 */
export class ApprovalStore {
  readonly file: string;

  constructor(stateRoot: string) {
    this.file = join(stateRoot, 'approvals.json');
  }

  all(): Record<string, LocalDecision> {
    if (!existsSync(this.file)) return {};
    try {
      return ApprovalsFile.parse(JSON.parse(readFileSync(this.file, 'utf8')));
    } catch (err) {
      throw new AgentError(AgentErrorCode.STATE_CORRUPT, `${this.file} is unreadable: ${(err as Error).message}`);
    }
  }

  get(studyId: string): LocalDecision | undefined {
    return this.all()[studyId];
  }

  record(studyId: string, decision: LocalDecision): void {
    const all = this.all();
    all[studyId] = LocalDecision.parse(decision);
    mkdirSync(join(this.file, '..'), { recursive: true, mode: 0o700 });
    writeFileAtomic(this.file, JSON.stringify(all, null, 2) + '\n', 0o600);
  }

  /** Why training for this hash is not allowed, or null when this silo approved exactly this hash. */
  refusalFor(studyId: string, planHash: string): string | null {
    const local = this.get(studyId);
    if (local === undefined) return 'this silo has not approved the study';
    if (local.planHash !== planHash) {
      return `this silo's ${local.decision === 'approve' ? 'approval' : 'decision'} covers plan version ${local.planVersion} (hash ${local.planHash.slice(0, 12)}…), not hash ${planHash.slice(0, 12)}…`;
    }
    if (local.decision !== 'approve') return 'this silo rejected this plan';
    return null;
  }
}
