import { Injectable } from '@nestjs/common';
import { ChainBreakCode, ChainVerifier, verifyCheckpoint, type Checkpoint } from '@tessera/audit';
import { AuditCheckpointRepository } from './audit-checkpoint.repository';
import { AuditSigningKeyService } from './audit-signing-key.service';
import { AuditRepository } from './audit.repository';

/**
 * The chain codes of @tessera/audit (HASH_MISMATCH, SEQ_GAP, PREV_HASH_MISMATCH...; TRUNCATED when a signed checkpoint
 * lies beyond the stored head) and the checkpoint checks of the stored log.
 */
export type StoredChainProblemCode =
  | ChainBreakCode
  | 'CHECKPOINT_KEY_UNKNOWN'
  | 'CHECKPOINT_SIGNATURE_INVALID'
  | 'CHECKPOINT_COUNT_MISMATCH'
  | 'CHECKPOINT_MISMATCH';

export interface StoredChainProblem {
  code: StoredChainProblemCode;
  seq: number;
  message: string;
}

export interface StoredChainVerification {
  ok: boolean;
  verifiedAt: string;
  /** Records that verified, from seq 1 up to the first break (or the head). */
  records: number;
  /** The head as read when verification started (records appended meanwhile are left for the next run). */
  headSeq: number;
  /** Hash of the head when the whole chain verified, else null. */
  headHash: string | null;
  /** Checkpoints examined, and those whose signature verified and whose hash matched the verified chain. */
  checkpoints: { total: number; verified: number };
  /** The lowest-seq problem: from there on the log cannot be trusted. */
  firstBroken: StoredChainProblem | null;
  /** Every problem found (at most MAX_PROBLEMS); the chain itself contributes only its first break. */
  problems: StoredChainProblem[];
}

/** Rows read per query: memory stays bounded whatever the length of the chain. */
const BATCH = 1000;
const MAX_PROBLEMS = 100;

/**
 * Verifies the stored audit log end to end: the hash chain from genesis (streamed through ChainVerifier in batches,
 * O(1) memory), every stored checkpoint's Ed25519 signature, and that each checkpoint names the chain's hash at its
 * seq. The result names the first broken link.
 */
@Injectable()
export class AuditVerificationService {
  constructor(
    private readonly chain: AuditRepository,
    private readonly stored: AuditCheckpointRepository,
    private readonly keys: AuditSigningKeyService,
  ) {}

  async verifyStoredChain(): Promise<StoredChainVerification> {
    const verifiedAt = new Date().toISOString();
    const headSeq = await this.chain.headSeq();
    const publicKeys = await this.keys.publicKeys();
    const problems: StoredChainProblem[] = [];
    const report = (p: StoredChainProblem) => {
      if (problems.length < MAX_PROBLEMS) problems.push(p);
    };

    let total = 0;
    let verified = 0;
    const stored = this.checkpoints();
    /** The next stored checkpoint whose signature verifies; the others are reported and skipped. */
    const nextValid = async (): Promise<Checkpoint | undefined> => {
      for (let n = await stored.next(); !n.done; n = await stored.next()) {
        total += 1;
        const problem = checkpointProblem(n.value, publicKeys);
        if (problem === null) return n.value;
        report(problem);
      }
      return undefined;
    };

    const verifier = new ChainVerifier();
    let checkpoint = await nextValid();
    let after = 0;
    let broken = false;
    while (!broken && after < headSeq) {
      const rows = await this.chain.batchAfter(after, headSeq, BATCH);
      if (rows.length === 0) break;
      for (const row of rows) {
        if (verifier.push(row) !== null) {
          broken = true;
          break;
        }
        const { seq, hash } = verifier.head;
        // Records are dense while the chain holds, so a checkpoint's seq is met exactly.
        while (checkpoint !== undefined && checkpoint.seq <= seq) {
          if (checkpoint.headHash === hash) {
            verified += 1;
          } else {
            report({
              code: 'CHECKPOINT_MISMATCH',
              seq: checkpoint.seq,
              message: `checkpoint seq ${checkpoint.seq} signed hash ${checkpoint.headHash} but the chain has ${hash}: the log was rewritten up to here`,
            });
          }
          checkpoint = await nextValid();
        }
      }
      after = rows[rows.length - 1]!.seq;
    }
    const chain = verifier.finish();
    if (!chain.ok) report({ code: chain.reason, seq: chain.brokenAt, message: chain.message });

    // Checkpoints left: past a break (their signatures are still checked), or beyond the head.
    for (; checkpoint !== undefined; checkpoint = await nextValid()) {
      if (broken || checkpoint.seq <= headSeq) continue;
      // Appended and checkpointed while this verification ran: fine. Otherwise records were cut off the end.
      const exists = await this.chain.recordExists(checkpoint.seq);
      if (exists) {
        total -= 1;
        continue;
      }
      report({
        code: ChainBreakCode.Truncated,
        seq: headSeq + 1,
        message: `checkpoint seq ${checkpoint.seq} was signed but the log ends at seq ${headSeq}: records were removed`,
      });
    }

    const firstBroken = problems.reduce<StoredChainProblem | null>(
      (min, p) => (min === null || p.seq < min.seq ? p : min),
      null,
    );
    return {
      ok: problems.length === 0,
      verifiedAt,
      records: verifier.count,
      headSeq,
      headHash: chain.ok && headSeq > 0 ? chain.headHash : null,
      checkpoints: { total, verified },
      firstBroken,
      problems,
    };
  }

  /** Stored checkpoints in seq order, read in batches. */
  private async *checkpoints(): AsyncGenerator<Checkpoint> {
    let after = 0;
    for (;;) {
      const rows = await this.stored.after(after, BATCH);
      for (const row of rows) yield row;
      if (rows.length < BATCH) return;
      after = rows[rows.length - 1]!.seq;
    }
  }
}

function checkpointProblem(cp: Checkpoint, publicKeys: Map<string, string>): StoredChainProblem | null {
  const key = publicKeys.get(cp.keyId);
  if (key === undefined) {
    return {
      code: 'CHECKPOINT_KEY_UNKNOWN',
      seq: cp.seq,
      message: `checkpoint seq ${cp.seq}: unknown key ${cp.keyId}`,
    };
  }
  const check = verifyCheckpoint(cp, key);
  if (!check.ok) return { code: 'CHECKPOINT_SIGNATURE_INVALID', seq: cp.seq, message: check.message };
  if (cp.count !== undefined && cp.count !== cp.seq) {
    return {
      code: 'CHECKPOINT_COUNT_MISMATCH',
      seq: cp.seq,
      message: `checkpoint seq ${cp.seq} has count ${cp.count}`,
    };
  }
  return null;
}
