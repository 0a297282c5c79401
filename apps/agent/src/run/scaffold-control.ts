import { scaffoldControlUpdate, type LocalTrainingResult } from '@tessera/ml';
import { sha256Hex } from '@tessera/protocol';
import type { StudyTransport } from '../hub/study-transport';
import type { ControlVariateStore } from '../training/control-variate.store';
import {
  allFinite,
  float32FromLittleEndian,
  fmt,
  l2Norm,
  TaskFailure,
  type PlanContext,
  type StepLog,
} from './task-context';

/** A SCAFFOLD round's control variates: the hub's c and this silo's c_i, as the round starts (ADR 0019). */
export interface ScaffoldRound {
  server: Float32Array;
  client: Float32Array;
}

export interface ScaffoldControlDeps {
  transport: StudyTransport;
  controlVariates: ControlVariateStore;
  log: StepLog;
}

/** SCAFFOLD at the silo (Karimireddy et al., ICML 2020, option II; ADR 0019): the round's control variates in, the control delta out. */
export class ScaffoldControl {
  constructor(private readonly deps: ScaffoldControlDeps) {}

  /**
   * The hub's control variate c for this round (zeros in round 1, when the task names none), downloaded and checked
   * against its hash like the model, and this silo's c_i from the state directory.
   */
  async roundStart(ctx: PlanContext, length: number): Promise<ScaffoldRound> {
    const { task, name } = ctx;
    const client = this.deps.controlVariates.controlFor(task.studyId, task.planHash, task.modelHash, length);
    if (task.controlVariateHash === undefined) return { server: new Float32Array(length), client };
    const hash = task.controlVariateHash;
    const bytes = await this.deps.transport.downloadModel(hash, length * 4);
    if (sha256Hex(bytes) !== hash || bytes.byteLength !== length * 4) {
      throw new TaskFailure(
        'TRAINING_FAILED',
        `the control variate downloaded for ${hash.slice(0, 12)}… does not match its hash or the model's ${length} values; refused`,
      );
    }
    const server = float32FromLittleEndian(bytes);
    if (!allFinite(server)) throw new TaskFailure('TRAINING_FAILED', 'the control variate has non-finite values');
    this.deps.log({
      study: name,
      round: task.round,
      message: `SCAFFOLD: control variate ${hash.slice(0, 12)}… downloaded and verified`,
    });
    return { server, client };
  }

  /**
   * The upload: the model delta, then the control delta Δc_i = c_i⁺ − c_i (option II). c_i⁺ is kept in the state
   * directory before the update is persisted, so it is on file whenever the update can leave. Under DP-SGD c_i⁺ is the
   * mean of the noisy gradients the silo stepped on: post-processing of the charged releases, no extra charge.
   */
  payload(ctx: PlanContext, scaffold: ScaffoldRound, result: LocalTrainingResult, learningRate: number): Float32Array {
    const { task } = ctx;
    const update = scaffoldControlUpdate({
      clientControl: scaffold.client,
      serverControl: scaffold.server,
      delta: result.delta,
      steps: result.steps,
      learningRate,
    });
    const m = result.delta.length;
    if (allFinite(update.control)) {
      this.deps.controlVariates.save({
        studyId: task.studyId,
        planHash: task.planHash,
        baseModelHash: task.modelHash,
        round: task.round,
        length: m,
        before: scaffold.client,
        after: update.control,
      });
    }
    const payload = new Float32Array(2 * m);
    payload.set(result.delta, 0);
    payload.set(update.controlDelta, m);
    this.deps.log({
      study: ctx.name,
      round: task.round,
      message: `SCAFFOLD: control variate kept in the state directory; control delta norm ${fmt(l2Norm(update.controlDelta), 4)} uploaded after the model delta`,
    });
    return payload;
  }
}
