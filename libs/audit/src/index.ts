// @tessera/audit: public surface.
export {};
