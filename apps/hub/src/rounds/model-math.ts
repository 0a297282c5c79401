import {
  FedAdagradServerOptimizer,
  FedAdamServerOptimizer,
  FedAvgAggregator,
  FedAvgMServerOptimizer,
  FedAvgServerOptimizer,
  FedYogiServerOptimizer,
  type DeltaAggregator,
  type ServerOptimizer,
} from '@tessera/aggregation';
import { modelSpecOf, readFramePrefix, type StudyPlan } from '@tessera/protocol';

/** Number of parameters of the plan's model (the flat layout shared by hub and agent). */
export async function parameterCount(plan: StudyPlan): Promise<number> {
  const ml = await import('@tessera/ml');
  return ml.parameterLayout(ml.parseModelSpec(modelSpecOf(plan))).size;
}

/** The study's first global model: seeded, so the same plan always starts from the same weights. */
export async function initialModel(plan: StudyPlan): Promise<Float32Array> {
  const ml = await import('@tessera/ml');
  return ml.initialParameters(ml.parseModelSpec(modelSpecOf(plan)), plan.training.initSeed);
}

export function serverOptimizerFor(plan: StudyPlan, length: number): ServerOptimizer {
  const o = plan.training.serverOptimizer;
  const serverLearningRate = o.learningRate;
  switch (o.kind) {
    case 'fedavg':
      return new FedAvgServerOptimizer({ length, serverLearningRate });
    case 'fedavgm':
      return new FedAvgMServerOptimizer({
        length,
        serverLearningRate,
        ...(o.momentum !== undefined ? { momentum: o.momentum } : {}),
      });
    case 'fedadam':
    case 'fedyogi':
    case 'fedadagrad': {
      const options = {
        length,
        serverLearningRate,
        ...(o.beta1 !== undefined ? { beta1: o.beta1 } : {}),
        ...(o.beta2 !== undefined ? { beta2: o.beta2 } : {}),
        ...(o.tau !== undefined ? { tau: o.tau } : {}),
      };
      if (o.kind === 'fedadam') return new FedAdamServerOptimizer(options);
      if (o.kind === 'fedyogi') return new FedYogiServerOptimizer(options);
      return new FedAdagradServerOptimizer(options);
    }
    default: {
      const unknown: never = o.kind;
      throw new Error(`unknown server optimizer ${String(unknown)}`);
    }
  }
}

export function aggregatorFor(_plan: StudyPlan, length: number): DeltaAggregator {
  return new FedAvgAggregator(length, { weighting: 'weighted' });
}

export function float32FromBytes(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new Error('a float32 vector must have a multiple of 4 bytes');
  const out = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** The payload of a stored framed update (its header was validated on receipt). */
export function payloadOfFrame(frame: Buffer): Float32Array {
  const headerLength = readFramePrefix(frame.subarray(0, 8));
  return float32FromBytes(frame.subarray(8 + headerLength));
}
