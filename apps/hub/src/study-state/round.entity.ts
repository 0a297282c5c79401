import type { RoundScreeningView } from '@tessera/protocol';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** 'closing': claimed by a hub that is aggregating it (no more reports accepted); see RoundCloser. */
export type RoundStatus = 'open' | 'closing' | 'closed' | 'retried' | 'failed' | 'abandoned';

/** One attempt at one round of a study. All round state lives here, so a restarted hub resumes it. */
@Entity('rounds')
export class RoundEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'study_id', type: 'uuid' })
  studyId!: string;

  @Column({ type: 'integer' })
  number!: number;

  @Column({ type: 'integer' })
  attempt!: number;

  /** 'train' rounds produce a new model; the final 'evaluate' round measures the last one at every silo. */
  @Column({ type: 'varchar', length: 8 })
  kind!: 'train' | 'evaluate';

  @Column({ type: 'varchar', length: 10 })
  status!: RoundStatus;

  /** The global model published for this round (content-addressed blob). */
  @Column({ name: 'model_hash', type: 'char', length: 64 })
  modelHash!: string;

  @Column({ name: 'result_model_hash', type: 'char', length: 64, nullable: true })
  resultModelHash!: string | null;

  @Column({ name: 'opened_at', type: 'timestamptz' })
  openedAt!: Date;

  @Column({ name: 'deadline_at', type: 'timestamptz' })
  deadlineAt!: Date;

  @Column({ name: 'closed_at', type: 'timestamptz', nullable: true })
  closedAt!: Date | null;

  @Column({ name: 'close_reason', type: 'text', nullable: true })
  closeReason!: string | null;

  @Column({ type: 'jsonb', nullable: true })
  summary!: RoundSummary | null;

  /** While 'closing': the claim of the hub aggregating the round; its commit must still find this value. */
  @Column({ name: 'close_claim', type: 'uuid', nullable: true })
  closeClaim!: string | null;

  /** While 'closing': when the claim lapses unless renewed (by the database's clock). */
  @Column({ name: 'close_claim_expires_at', type: 'timestamptz', nullable: true })
  closeClaimExpiresAt!: Date | null;
}

/** Aggregate figures of a closed round (evaluation of the round's input model across silos). */
export interface RoundSummary {
  reported: number;
  participants: number;
  /** Training records summed over the reported updates; null unless the plan releases record counts. */
  totalExamples: number | null;
  /**
   * Mean over silos of their test accuracy/loss/AUC, unweighted and weighted by test size. `noisy`: some figures
   * are estimates from DP releases (noisy test sizes, no loss).
   */
  evaluation: {
    accuracy: { unweighted: number | null; weighted: number | null };
    loss: { unweighted: number | null; weighted: number | null };
    auc: { unweighted: number | null };
    noisy?: boolean;
    /** Network plans' task metrics (balanced accuracy, F1; MAE, RMSE, R² for regression), when the silos report them. */
    balancedAccuracy?: { unweighted: number | null; weighted: number | null };
    f1?: { unweighted: number | null; weighted: number | null };
    mae?: { unweighted: number | null; weighted: number | null };
    rmse?: { unweighted: number | null; weighted: number | null };
    r2?: { unweighted: number | null; weighted: number | null };
  };
  /** What was applied to the updates, in order (weights, clipping, noise, server step): never their values. */
  aggregationTrace?: object[];
  /** Update screening of the round, per silo (training rounds of plans that screen). */
  screening?: RoundScreeningView;
}
