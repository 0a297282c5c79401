// @tessera/aggregation: public surface.
export {};
