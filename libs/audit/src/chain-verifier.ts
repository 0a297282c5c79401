import {
  computeRecordHash,
  describeRecordProblem,
  GENESIS_PREV_HASH,
  isSha256Hex,
  type AuditRecord,
  type ChainAnchor,
} from './audit-record';

/** Why a chain failed to verify; see docs/audit-format.md for when each applies. */
export enum ChainBreakCode {
  /** Not a well-formed record (missing/unknown field, wrong type, bad timestamp, non-JSON details). */
  Malformed = 'MALFORMED',
  /** seq is larger than the next expected seq: records are missing (deleted) or out of order. */
  SeqGap = 'SEQ_GAP',
  /** seq is not larger than the previous one: a duplicate, a reordering or a replayed record. */
  SeqNotIncreasing = 'SEQ_NOT_INCREASING',
  /** prevHash is not the hash of the previous record (or of the trusted anchor). */
  PrevHashMismatch = 'PREV_HASH_MISMATCH',
  /** The stored hash is not the hash of the record's contents: the record was edited. */
  HashMismatch = 'HASH_MISMATCH',
  /** The chain ends before the trusted head's seq (records were cut off the end). */
  Truncated = 'TRUNCATED',
  /** The record at the trusted head's seq has a different hash (the chain was rewritten up to the end). */
  HeadMismatch = 'HEAD_MISMATCH',
  /** A record follows the trusted head although the head is declared to be the last record. */
  BeyondHead = 'BEYOND_HEAD',
}

export interface ChainIntact {
  ok: true;
  /** Records verified (in this segment). */
  count: number;
  /** seq of the last verified record (the anchor's seq when no record was fed). */
  headSeq: number;
  /** hash of the last verified record (the anchor's hash when no record was fed). */
  headHash: string;
}

export interface ChainBroken {
  ok: false;
  /** The seq where the chain stops linking: the seq that was expected at the first bad position. */
  brokenAt: number;
  /** 0-based position of the offending record in the input (= number of records accepted before it). */
  index: number;
  reason: ChainBreakCode;
  message: string;
}

export type ChainVerification = ChainIntact | ChainBroken;

export interface ChainVerifierOptions {
  /**
   * The trusted record just before the segment: its seq and hash. Defaults to genesis, { seq: 0, hash: 64 zeros },
   * so the first record must be seq 1 with prevHash GENESIS_PREV_HASH.
   */
  after?: ChainAnchor;
}

export interface ChainFinishOptions {
  /** A trusted last record (for instance from a signed checkpoint): the chain must end exactly there. */
  expectedHead?: ChainAnchor;
}

/**
 * Streaming verifier of a hash chain (docs/audit-format.md, "Verifying a chain"): feed records in order with
 * push(); memory stays O(1) whatever the length. The first broken link is kept and later records are ignored,
 * because after a break nothing downstream can be trusted and the first break is what an auditor must see.
 */
export class ChainVerifier {
  private expectedSeq: number;
  private prevHash: string;
  private accepted = 0;
  private broken: ChainBroken | null = null;

  constructor(options: ChainVerifierOptions = {}) {
    const after = options.after ?? { seq: 0, hash: GENESIS_PREV_HASH };
    if (!Number.isSafeInteger(after.seq) || after.seq < 0 || !isSha256Hex(after.hash)) {
      throw new RangeError('chain anchor must have an integer seq >= 0 and a 64-hex-digit hash');
    }
    this.expectedSeq = after.seq + 1;
    this.prevHash = after.hash;
  }

  /** Checks the next record; returns the first break so far (this one or an earlier one), or null. */
  push(record: unknown): ChainBroken | null {
    if (this.broken !== null) return this.broken;
    const fail = (reason: ChainBreakCode, message: string): ChainBroken => {
      this.broken = { ok: false, brokenAt: this.expectedSeq, index: this.accepted, reason, message };
      return this.broken;
    };
    const problem = describeRecordProblem(record);
    if (problem !== null) {
      return fail(
        ChainBreakCode.Malformed,
        `record at position ${this.accepted} (expected seq ${this.expectedSeq}): ${problem}`,
      );
    }
    const r = record as AuditRecord;
    if (r.seq > this.expectedSeq) {
      return fail(
        ChainBreakCode.SeqGap,
        `expected seq ${this.expectedSeq} but found seq ${r.seq}: records are missing or out of order`,
      );
    }
    if (r.seq < this.expectedSeq) {
      return fail(
        ChainBreakCode.SeqNotIncreasing,
        `expected seq ${this.expectedSeq} but found seq ${r.seq}: a record is duplicated, replayed or out of order`,
      );
    }
    if (r.prevHash !== this.prevHash) {
      return fail(
        ChainBreakCode.PrevHashMismatch,
        `seq ${r.seq}: prevHash ${r.prevHash} is not the previous hash ${this.prevHash}`,
      );
    }
    const actual = computeRecordHash(r);
    if (actual !== r.hash) {
      return fail(ChainBreakCode.HashMismatch, `seq ${r.seq}: stored hash ${r.hash} but contents hash to ${actual}`);
    }
    this.expectedSeq += 1;
    this.prevHash = r.hash;
    this.accepted += 1;
    return null;
  }

  /** Records accepted so far. */
  get count(): number {
    return this.accepted;
  }

  /** The anchor the next record must extend: seq and hash of the last accepted record. */
  get head(): ChainAnchor {
    return { seq: this.expectedSeq - 1, hash: this.prevHash };
  }

  /** The verdict for everything pushed so far, optionally checked against a trusted head. */
  finish(options: ChainFinishOptions = {}): ChainVerification {
    if (this.broken !== null) return this.broken;
    const head = this.head;
    const expected = options.expectedHead;
    if (expected !== undefined) {
      const at = (reason: ChainBreakCode, brokenAt: number, message: string): ChainBroken => ({
        ok: false,
        brokenAt,
        index: this.accepted,
        reason,
        message,
      });
      if (head.seq < expected.seq) {
        return at(
          ChainBreakCode.Truncated,
          head.seq + 1,
          `chain ends at seq ${head.seq}; the trusted head is seq ${expected.seq}`,
        );
      }
      if (head.seq > expected.seq) {
        return at(
          ChainBreakCode.BeyondHead,
          expected.seq + 1,
          `chain continues to seq ${head.seq} past the trusted head seq ${expected.seq}`,
        );
      }
      if (head.hash !== expected.hash) {
        return {
          ...at(
            ChainBreakCode.HeadMismatch,
            head.seq,
            `seq ${head.seq} has hash ${head.hash}; the trusted head says ${expected.hash}`,
          ),
          index: Math.max(0, this.accepted - 1),
        };
      }
    }
    return { ok: true, count: this.accepted, headSeq: head.seq, headHash: head.hash };
  }
}

/**
 * Verifies a whole chain (or a segment after a trusted anchor) and names the FIRST broken link. Each record must
 * have seq = previous seq + 1, prevHash = previous hash and hash = computeRecordHash(record).
 */
export function verifyChain(
  records: Iterable<unknown>,
  options: ChainVerifierOptions & ChainFinishOptions = {},
): ChainVerification {
  const verifier = new ChainVerifier(options);
  for (const record of records) {
    if (verifier.push(record) !== null) break;
  }
  return verifier.finish(options);
}
