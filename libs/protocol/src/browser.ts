// @tessera/protocol for the web console: the plan schema, its validation and description, and the API view types,
// without the parts that need Node built-ins (plan hashing and update frames use node:crypto and Buffer; the hub and
// the agent compute those, never the browser).
export {
  EvaluationRelease,
  FeatureColumn,
  FeatureSchema,
  NumericScaling,
  RecordSplit,
  ReleasePlan,
  describeRelease,
  releasedWithoutDp,
  LabelRule,
  ModelChoice,
  ParticipationPlan,
  PrivacyPlan,
  ServerOptimizerPlan,
  StudyPlan,
  TrainingPlan,
  describePlan,
  encodedFeatureCount,
  modelSpecOf,
  studyPlanProblems,
  type PlannedModelSpec,
} from './study-plan';
export { HubErrorBody, type EnrollmentBundle } from './identity';
export type {
  Decision,
  EvaluationMetrics,
  EvaluationPayload,
  FailureReport,
  PrivacySpend,
  SiloStudy,
  StudyStatus,
} from './rounds';
export * from './api-views';
export * from './audit-views';
export * from './heart-disease-schema';
