import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { UpdateReceipt } from '@tessera/protocol';
import { writeFileAtomic } from './atomic-file.util';

/**
 * The hub's receipts for this silo's uploads, `receipts/<studyId>/<round>-<attempt>.json`: the silo's own proof of
 * what it contributed, and how a restarted agent knows not to train a task twice.
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

  save(receipt: UpdateReceipt): string {
    const path = this.pathOf(receipt.studyId, receipt.round, receipt.attempt);
    mkdirSync(join(this.root, receipt.studyId), { recursive: true, mode: 0o700 });
    writeFileAtomic(path, JSON.stringify(receipt, null, 2) + '\n', 0o600);
    return path;
  }
}
