// The declarative network of a study (issue 17): schema and errors, shape inference, presets.
export * from './network-spec-schema';
export * from './network-spec-shapes';
export * from './network-spec-presets';
