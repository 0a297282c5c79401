// The route access declaration moved to access/ (a folder below every feature, so that the features it protects and
// the guard in auth/ stand on it without importing each other). Kept only for secagg/secagg.controller.ts until that
// file imports ../access/access.decorator; tools/hub-folder-cycles.mjs lists the edge meanwhile.
export * from '../access/access.decorator';
