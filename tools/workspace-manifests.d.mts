// Types of workspace-manifests.mjs, for its spec.
export declare const SOURCE_CONDITION: '@tessera/source';
export declare function workspaceProblems(root: string): string[];
