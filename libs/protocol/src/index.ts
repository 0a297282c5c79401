// @tessera/protocol: wire types and validation shared by hub, agent and console.
export * from './identity';
export * from './hub-errors';
export * from './study-plan';
export * from './rounds';
export * from './api-views';
export * from './agent-presence';
export * from './audit-views';
export * from './heart-disease-schema';
export * from './network-spec';
export * from './secagg-wire';
export * from './silo-privacy-views';
export * from './plan-diff';
export * from './study-pages-views';
export * from './fairness';
// The hub's API as types, generated from its OpenAPI document (`npm run openapi`): for openapi-fetch clients.
export type {
  components as HubApiComponents,
  operations as HubApiOperations,
  paths as HubApiPaths,
} from './hub-api.generated';
