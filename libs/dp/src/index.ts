// @tessera/dp: public surface.
export * from './privacy-parameter.exception';
export * from './rdp-accountant';
export * from './privacy-calibration';
export * from './random-source';
export * from './discrete-gaussian';
export * from './gaussian-noise';
export * from './clipping.util';
