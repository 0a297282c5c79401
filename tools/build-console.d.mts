// Types of build-console.mjs, for its spec.
export declare function newestInput(path: string): number;
