// Types of hub-folder-cycles.mjs, for its spec.
export declare const HUB_SOURCES: 'apps/hub/src';
export declare const ROOT_FOLDER: '(root)';
export declare function folderOf(file: string, root?: string): string;
export declare function folderEdges(
  modules: readonly { source: string; dependencies: readonly { resolved: string }[] }[],
  root?: string,
): Map<string, string[]>;
export declare function cyclicComponents(edgeKeys: Iterable<string>): string[][];
export declare function cycleEdges(edgeKeys: Iterable<string>): string[];
export declare function cycleProblems(edges: Map<string, string[]>): string[];
export declare function hubModules(
  workspaceRoot: string,
): Promise<{ source: string; dependencies: { resolved: string; dependencyTypes: string[] }[] }[]>;
