import type { RoundStatus, StudyProgressView } from '@tessera/protocol';

/** One study's row of the progress query (StudiesRepository.progress). */
export interface StudyProgressRow {
  studyId: string;
  round: number | null;
  finalEvaluation: RoundStatus | null;
  accuracyRound: number | null;
  accuracyKind: 'train' | 'evaluate' | null;
  accuracyMean: number | null;
  accuracyNoisy: boolean | null;
}

/** The API's progress of a study from its row (none: no round yet) and the training rounds its plan asks for. */
export function progressOf(row: StudyProgressRow | undefined, plannedRounds: number | null): StudyProgressView {
  const accuracy =
    row && row.accuracyRound !== null && row.accuracyMean !== null && Number.isFinite(Number(row.accuracyMean))
      ? {
          mean: Number(row.accuracyMean),
          round: row.accuracyRound,
          final: row.accuracyKind === 'evaluate',
          noisy: row.accuracyNoisy === true,
        }
      : null;
  return {
    round: row?.round ?? null,
    rounds: plannedRounds,
    finalEvaluation: row?.finalEvaluation ?? null,
    accuracy,
  };
}
