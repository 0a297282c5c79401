import type { Readable } from 'node:stream';

/** Bytes being written into the store; named by their SHA-256 only once committed. */
export interface StagedBlob {
  write(chunk: Uint8Array): Promise<void>;
  /** Stores the bytes under their SHA-256 (idempotent: the same content commits to the same name). */
  commit(): Promise<{ hash: string; size: number }>;
  /** Drops everything written; nothing remains in the store. */
  abort(): Promise<void>;
}

/**
 * Content-addressed storage for models, updates and optimizer state: a blob's name is the SHA-256 of its bytes.
 * The filesystem store is the default; an object store (S3-compatible) implements the same port.
 */
export abstract class BlobStore {
  abstract put(bytes: Uint8Array): Promise<string>;
  abstract stage(): Promise<StagedBlob>;
  abstract get(hash: string): Promise<Buffer>;
  abstract openRead(hash: string): Readable;
  abstract has(hash: string): Promise<boolean>;
  abstract size(hash: string): Promise<number>;
}
