// @tessera/pki: public surface.
export {};
