import type { SiloTask } from '@tessera/protocol';
import type { ChargeRequest } from '../privacy/silo-privacy-ledger';
import { SecAggDropout, type SecAggParticipant } from '../secagg/secagg-participant';
import type { ReleaseBudget } from './release-budget';
import { allFinite, fmt, l2Norm, StudyFailure, TaskFailure, type PlanContext, type StepLog } from './task-context';
import type { TaskInputs } from './task-inputs';

export interface SecureTrainingDeps {
  /** This silo's participant in a training round under secure aggregation (absent: this run cannot take part). */
  participantFor?: (task: SiloTask) => SecAggParticipant;
  inputs: TaskInputs;
  budget: ReleaseBudget;
  log: StepLog;
}

/** How a secure-aggregation round ended for this silo. */
export type SecureTrainingOutcome = { kind: 'summed'; reason: string } | { kind: 'refused'; reason: string };

/**
 * A training round under secure aggregation (docs/secure-aggregation.md, "In the agent"): keys are advertised and
 * shares sent before training (so no neighbour waits on this silo's training), the update is clipped to the plan's
 * clipNorm, quantised, masked and uploaded instead of the update in the clear, and the unmasking request answered.
 * Under DP-SGD the update is private before it is quantised and masked; under distributed DP-FedAvg this silo adds
 * its share of the noise to the quantised update before masking. The plan check allows no per-round evaluation here,
 * so nothing else leaves the silo.
 * A restart resumes from the participant's state file; a round that went on without this silo ends the task.
 */
export class SecureTraining {
  constructor(private readonly deps: SecureTrainingDeps) {}

  async run(ctx: PlanContext): Promise<SecureTrainingOutcome> {
    const { task, name } = ctx;
    const { inputs, budget, log } = this.deps;
    const make = this.deps.participantFor;
    if (!make) {
      throw new StudyFailure('TRAINING_FAILED', 'this agent run cannot take part in secure aggregation');
    }
    const participant = make(task);
    const request: ChargeRequest = { trainingRounds: 1, evaluationReleases: 0 };
    const { model, options } = inputs.planModel(ctx.study);
    const data = await inputs.dataFor(task, ctx.study, model);
    const { mechanism } = ctx;
    inputs.requireMeaningfulDelta(mechanism, data);
    budget.check(ctx, request, false);
    // Distributed DP: this silo's share of the noise, sized from the approved plan (never from the hub's numbers).
    const privacy = ctx.plan.privacy;
    const noise =
      privacy.mode === 'dp-fedavg' && privacy.noise === 'distributed' && mechanism && ctx.plan.secureAggregation
        ? {
            noiseMultiplier: mechanism.noiseMultiplier,
            clipNorm: mechanism.clipNorm,
            shares: ctx.plan.secureAggregation.threshold,
          }
        : null;
    try {
      await participant.prepare();
      log({ study: name, round: task.round, message: 'secure aggregation: keys advertised, shares sent' });
      const parameters = await inputs.downloadModel(task, model, name);
      await inputs.evaluateLocally(ctx, model, parameters, data);
      const trainingStarted = performance.now();
      const result = await inputs.train(ctx, model, parameters, data, options);
      const trainingMs = performance.now() - trainingStarted;
      if (!allFinite(result.delta)) {
        participant.drop();
        throw new TaskFailure('TRAINING_FAILED', 'local training diverged: the update has non-finite values');
      }
      budget.charge(ctx, request, task.modelHash);
      const trace = await participant.contribute(result.delta, noise);
      const clip = trace ? `, clipped by ${fmt(trace.clipFactor, 4)} to norm ≤ ${trace.clipNorm}` : '';
      const noised = trace?.noise
        ? `, with its share of the noise (discrete Gaussian σ = ${trace.noise.siloSigma} lattice steps of 1/${fmt(trace.scale, 6)})`
        : '';
      log({
        study: name,
        round: task.round,
        message: `trained ${options.epochs} local epoch(s) on ${data.train.n} records; update norm ${fmt(l2Norm(result.delta), 4)}${clip}${noised}; masked input uploaded (the hub sees only the sum)`,
      });
      const answered = await participant.unmask();
      const message =
        answered === 'answered'
          ? 'masked input summed; unmasking request answered'
          : 'masked input not in the sum (the hub did not count it); nothing revealed';
      log({ study: name, round: task.round, message: `secure aggregation: ${message}` });
      const overhead = participant.computationMs;
      log({
        study: name,
        round: task.round,
        message: `secure aggregation computed for ${fmt(overhead, 1)} ms (keys, shares, masking, answers; waiting not counted) against ${fmt(trainingMs, 1)} ms of local training: ${fmt((100 * overhead) / trainingMs, 1)}%`,
      });
      return { kind: 'summed', reason: message };
    } catch (err) {
      if (!(err instanceof SecAggDropout)) throw err;
      log({
        study: name,
        round: task.round,
        message: `secure aggregation: the round went on without this silo (${err.message}); its round state is deleted`,
      });
      return { kind: 'refused', reason: 'the round went on without this silo' };
    }
  }
}
