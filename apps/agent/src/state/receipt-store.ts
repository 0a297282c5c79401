import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UpdateReceipt } from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';
import { writeFileAtomic } from './atomic-file.util';

const RECEIPT_FILE = /^(\d+)-(\d+)\.json$/;

/**
 * The hub's receipts for this silo's uploads, `receipts/<studyId>/<round>-<attempt>.json`: the silo's own proof of
 * what it contributed, and how a restarted agent knows not to train a task twice, nor to ask the hub again about a
 * release it holds a receipt for.
 */
export class ReceiptStore {
  readonly root: string;

  constructor(stateRoot: string) {
    this.root = join(stateRoot, 'receipts');
  }

  pathOf(studyId: string, round: number, attempt: number): string {
    // studyId is a validated uuid and round/attempt are integers, so the path cannot escape the directory.
    return join(this.root, studyId, `${round}-${attempt}.json`);
  }

  has(studyId: string, round: number, attempt: number): boolean {
    return existsSync(this.pathOf(studyId, round, attempt));
  }

  /** Every receipt on file for a round of a study, whatever its attempt (attempt order). */
  forRound(studyId: string, round: number): UpdateReceipt[] {
    const dir = join(this.root, studyId);
    if (!existsSync(dir)) return [];
    const out: { attempt: number; receipt: UpdateReceipt }[] = [];
    for (const name of readdirSync(dir)) {
      const m = RECEIPT_FILE.exec(name);
      if (!m || Number(m[1]) !== round) continue;
      out.push({ attempt: Number(m[2]), receipt: this.read(join(dir, name)) });
    }
    return out.sort((a, b) => a.attempt - b.attempt).map((r) => r.receipt);
  }

  save(receipt: UpdateReceipt): string {
    const path = this.pathOf(receipt.studyId, receipt.round, receipt.attempt);
    mkdirSync(join(this.root, receipt.studyId), { recursive: true, mode: 0o700 });
    writeFileAtomic(path, JSON.stringify(receipt, null, 2) + '\n', 0o600);
    return path;
  }

  private read(file: string): UpdateReceipt {
    let parsed;
    try {
      parsed = UpdateReceipt.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    } catch (err) {
      throw unreadable(file, (err as Error).message);
    }
    if (!parsed.success) throw unreadable(file, parsed.error.issues[0]?.message ?? 'invalid');
    return parsed.data;
  }
}

function unreadable(file: string, reason: string): AgentError {
  return new AgentError(
    AgentErrorCode.STATE_CORRUPT,
    `the receipt ${file} is unreadable (${reason}); the agent will not guess what the hub accepted. Keep the file for investigation: the hub's report (tessera-verify --reconcile) says what it holds.`,
  );
}
