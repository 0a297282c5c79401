import type { RoundStatus, StudyProgressView } from '@tessera/protocol';
import type { DataSource, EntityManager } from 'typeorm';

/** One study's row of the progress query (see studyProgressRows). */
export interface StudyProgressRow {
  studyId: string;
  round: number | null;
  finalEvaluation: RoundStatus | null;
  accuracyRound: number | null;
  accuracyKind: 'train' | 'evaluate' | null;
  accuracyMean: number | null;
  accuracyNoisy: boolean | null;
}

/**
 * Where each study's rounds stand and the latest accuracy they measured, in ONE statement for all the studies (the
 * console polls the list): the highest training round, the final evaluation's latest attempt, and the latest round
 * attempt whose summary holds a mean accuracy. Only the one figure is read out of the summaries, not the summaries
 * themselves (they carry per-silo screening and the aggregation trace). The lookups use the (study_id, number,
 * attempt) unique index.
 */
export async function studyProgressRows(
  db: Pick<DataSource | EntityManager, 'query'>,
  studyIds: readonly string[],
): Promise<Map<string, StudyProgressRow>> {
  if (studyIds.length === 0) return new Map();
  const rows = (await db.query(
    `SELECT s.id::text AS "studyId",
            t.round AS "round",
            e.status AS "finalEvaluation",
            a.number AS "accuracyRound",
            a.kind AS "accuracyKind",
            a.mean AS "accuracyMean",
            a.noisy AS "accuracyNoisy"
       FROM unnest($1::uuid[]) AS s(id)
       LEFT JOIN LATERAL (
         SELECT MAX(r.number)::int AS round FROM rounds r WHERE r.study_id = s.id AND r.kind = 'train'
       ) t ON true
       LEFT JOIN LATERAL (
         SELECT r.status FROM rounds r
          WHERE r.study_id = s.id AND r.kind = 'evaluate'
          ORDER BY r.number DESC, r.attempt DESC LIMIT 1
       ) e ON true
       LEFT JOIN LATERAL (
         SELECT r.number, r.kind,
                (r.summary #>> '{evaluation,accuracy,unweighted}')::float8 AS mean,
                COALESCE((r.summary #>> '{evaluation,noisy}')::boolean, false) AS noisy
           FROM rounds r
          WHERE r.study_id = s.id AND jsonb_typeof(r.summary #> '{evaluation,accuracy,unweighted}') = 'number'
          ORDER BY r.number DESC, r.attempt DESC LIMIT 1
       ) a ON true`,
    [studyIds],
  )) as StudyProgressRow[];
  return new Map(rows.map((r) => [r.studyId, r]));
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
