// @tessera/protocol: public surface.
export {};
