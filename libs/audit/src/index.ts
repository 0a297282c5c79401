// @tessera/audit: public surface. Hash-chained audit records, signed checkpoints and receipts, report bundles and
// their offline verification. Formats: docs/audit-format.md.
export * from '@tessera/canonical';
export * from './audit-record';
export * from './chain-verifier';
export * from './ed25519-signing';
export * from './signed-checkpoint';
export * from './signed-receipt';
export * from './report-bundle';
export * from './recorded-state';
export * from './json-lines';
export * from './verify-command';
export * from './silo-reconciliation';
