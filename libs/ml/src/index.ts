// @tessera/ml: public surface.
export {};
