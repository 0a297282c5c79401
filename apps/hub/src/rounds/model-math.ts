import {
  FedAdagradServerOptimizer,
  FedAdamServerOptimizer,
  FedAvgAggregator,
  FedAvgMServerOptimizer,
  FedAvgServerOptimizer,
  FedYogiServerOptimizer,
  createDpFedAvgAggregator,
  type DeltaAggregator,
  type ServerOptimizer,
} from '@tessera/aggregation';
import { latticeNoisySum, type PrivacyMechanism } from '@tessera/dp';
import { initialNetworkParameters, initialParameters, parameterLayout, parseModelSpec } from '@tessera/ml/server';
import { inferNetworkShapes, modelSpecOf, readFramePrefix, type StudyPlan } from '@tessera/protocol';

/**
 * Number of parameters of the plan's model (the flat layout shared by hub and agent). A network plan's count is its
 * inferred shape table's; a registry plan's the registry layout's (@tessera/ml/server: TensorFlow.js is not loaded).
 */
export function parameterCount(plan: StudyPlan): number {
  if (plan.model.kind === 'network') return inferNetworkShapes(plan.model.network).parameters;
  return parameterLayout(parseModelSpec(modelSpecOf(plan))).size;
}

/** The study's first global model: seeded, so the same plan always starts from the same weights. */
export function initialModel(plan: StudyPlan): Float32Array {
  if (plan.model.kind === 'network') return initialNetworkParameters(plan.model.network, plan.training.initSeed);
  return initialParameters(parseModelSpec(modelSpecOf(plan)), plan.training.initSeed);
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

/**
 * The round's aggregation strategy: FedAvg over updates the receiver already validated (weighted by the released
 * record counts when the plan releases them, else uniform), or for silo-level
 * DP (DP-FedAvg, McMahan et al. 2018) every silo's update clipped to C, uniform weights, and Gaussian noise on the
 * float64 sum on a lattice (@tessera/dp latticeNoisySum: exact discrete-Gaussian integers from the CSPRNG, stddev
 * σ·(C + γ√d)), over the fixed denominator of the round's participants.
 * FedAvg runs with `updatesPrevalidated`: update-receiver.ts checked the length, finiteness and norm of every stored
 * update on receipt, so the aggregator accumulates in one pass instead of re-checking (docs/benchmarks.md); a
 * non-finite aggregate is still refused at finish.
 */
export function aggregatorFor(
  plan: StudyPlan,
  length: number,
  mechanism: Pick<PrivacyMechanism, 'clipNorm' | 'noiseMultiplier'> | null,
  participants: number,
): DeltaAggregator {
  if (plan.privacy.mode === 'dp-fedavg' && mechanism) {
    return createDpFedAvgAggregator(
      length,
      { clippingNorm: mechanism.clipNorm, noiseMultiplier: mechanism.noiseMultiplier, expectedSilos: participants },
      (sum, parameters) => latticeNoisySum(sum, parameters),
    );
  }
  // Weighted by record counts only when the plan releases them; otherwise every silo counts equally (under DP-SGD
  // the noisy sum is normalised by the plan's batch size, so an update already scales with the silo's data).
  const weighting = plan.release.trainingExamples === 'exact' ? 'weighted' : 'unweighted';
  return new FedAvgAggregator(length, { weighting, updatesPrevalidated: true });
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
