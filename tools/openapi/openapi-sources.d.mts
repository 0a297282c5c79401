// Types of openapi-sources.mjs, for its spec.
export declare const VIEW_TYPES_FILE: string;
export declare const VIEW_SCHEMAS_FILE: string;
export declare const DOCUMENT_FILE: string;
export declare const CLIENT_TYPES_FILE: string;
export declare function viewSchemasSource(root: string): Promise<string>;
export declare function documentSource(root: string, document: unknown): Promise<string>;
export declare function clientTypesSource(root: string, documentText: string): Promise<string>;
export declare function log(message: string): void;
