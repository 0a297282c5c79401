import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { float32Bytes } from '@tessera/protocol';
import { writeFileAtomic } from '../state/atomic-file.util';

export type PersonalModelKind = 'personalized' | 'local-baseline';

/**
 * The silo's own models of a personalizing study (plan.personalization), kept in the agent's state directory and
 * never uploaded: `personalized/<studyId>/<kind>-<final model hash>.f32`, raw float32 little-endian parameters in the
 * plan's layout (the same bytes as a hub model), readable by the silo's own tools.
 */
export class PersonalModelStore {
  readonly root: string;

  constructor(stateRoot: string) {
    this.root = join(stateRoot, 'personalized');
  }

  /** Writes the model atomically (0600) and returns its path. */
  save(studyId: string, kind: PersonalModelKind, finalModelHash: string, parameters: Float32Array): string {
    const dir = join(this.root, studyId);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, `${kind}-${finalModelHash}.f32`);
    writeFileAtomic(file, float32Bytes(parameters));
    return file;
  }
}
