// @tessera/dp: public surface.
export {};
