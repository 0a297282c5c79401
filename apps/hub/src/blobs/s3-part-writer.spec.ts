import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { S3_MIN_PART_BYTES } from './s3-blob-store';
import { S3PartWriter } from './s3-part-writer';

const PART = S3_MIN_PART_BYTES;

interface Sent {
  name: string;
  input: Record<string, unknown>;
  /** A copy of an UploadPart's or PutObject's body, as S3 would have stored it. */
  body?: Buffer;
}

/** The S3 client seam: records each command, answers like S3, and fails the parts listed in `failParts`. */
function fakeClient(opts: { checksums?: boolean; failParts?: number[] } = {}) {
  const sent: Sent[] = [];
  const bodies = new Set<ArrayBufferLike>();
  const client = {
    config: { requestChecksumCalculation: () => Promise.resolve(opts.checksums ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED') },
    send: async (cmd: { input: Record<string, unknown> }) => {
      await new Promise((r) => setImmediate(r)); // on the wire for a turn
      const name = cmd.constructor.name;
      const raw = cmd.input.Body as Uint8Array | undefined;
      if (raw) bodies.add(raw.buffer);
      sent.push({ name, input: cmd.input, ...(raw ? { body: Buffer.from(raw) } : {}) });
      if (cmd instanceof CreateMultipartUploadCommand) return { UploadId: 'u-1' };
      if (cmd instanceof UploadPartCommand) {
        const n = cmd.input.PartNumber!;
        if (opts.failParts?.includes(n)) throw Object.assign(new Error(`part ${n} refused`), { name: 'InternalError' });
        return { ETag: `"e${n}"`, ...(opts.checksums ? { ChecksumCRC32: `c${n}` } : {}) };
      }
      return {};
    },
  };
  return { client: client as unknown as S3Client, sent, bodies };
}

const options = { bucket: 'b', key: 'staging/x', partSizeBytes: PART, sse: {} };
function bytes(n: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + seed) & 255;
  return out;
}

describe('S3PartWriter', () => {
  it('sends a body under one part as one PutObject, the empty body included', async () => {
    for (const size of [0, 1000, PART - 1]) {
      const { client, sent } = fakeClient();
      const w = new S3PartWriter(client, options);
      await w.write(bytes(size, 1));
      await w.end();
      expect(sent.map((s) => s.name)).toEqual([PutObjectCommand.name]);
      expect(sent[0]!.body!.equals(bytes(size, 1))).toBe(true);
    }
  });

  it('streams a larger body as ordered parts through two buffers, the last part short, and completes with every ETag', async () => {
    const { client, sent, bodies } = fakeClient({ checksums: true });
    const w = new S3PartWriter(client, options);
    const body = bytes(3 * PART + 12_345, 2);
    for (let o = 0; o < body.length; o += 100_000) await w.write(body.subarray(o, o + 100_000));
    await w.end();
    const parts = sent.filter((s) => s.name === UploadPartCommand.name);
    expect(parts.map((p) => p.input.PartNumber)).toEqual([1, 2, 3, 4]);
    expect(Buffer.concat(parts.map((p) => p.body!)).equals(body)).toBe(true);
    expect(bodies.size).toBe(2); // two part buffers for four parts
    expect(sent[0]).toMatchObject({ name: CreateMultipartUploadCommand.name, input: { ChecksumAlgorithm: 'CRC32' } });
    const complete = sent.at(-1)!;
    expect(complete.name).toBe(CompleteMultipartUploadCommand.name);
    expect(complete.input.MultipartUpload).toEqual({
      Parts: [1, 2, 3, 4].map((n) => ({ PartNumber: n, ETag: `"e${n}"`, ChecksumCRC32: `c${n}` })),
    });
  });

  it('declares no checksum algorithm when the client sends checksums only where required', async () => {
    const { client, sent } = fakeClient({ checksums: false });
    const w = new S3PartWriter(client, options);
    await w.write(bytes(PART + 1, 3));
    await w.end();
    expect(sent[0]!.input).not.toHaveProperty('ChecksumAlgorithm');
  });

  it('surfaces a refused part on a later write, takes nothing more, and abort drops the multipart upload', async () => {
    const { client, sent } = fakeClient({ failParts: [1] });
    const w = new S3PartWriter(client, options);
    await w.write(bytes(PART, 4)); // part 1 goes on the wire
    await expect(w.write(bytes(PART, 5))).rejects.toThrow('part 1 refused');
    await expect(w.end()).rejects.toThrow('part 1 refused');
    await w.abort();
    expect(sent.filter((s) => s.name === CompleteMultipartUploadCommand.name)).toEqual([]);
    expect(sent.at(-1)).toMatchObject({ name: AbortMultipartUploadCommand.name, input: { UploadId: 'u-1' } });
  });

  it('refuses bytes once ended or aborted', async () => {
    const { client } = fakeClient();
    const ended = new S3PartWriter(client, options);
    await ended.end();
    await expect(ended.write(bytes(1, 6))).rejects.toThrow('was ended');
    const aborted = new S3PartWriter(client, options);
    await aborted.abort();
    await expect(aborted.write(bytes(1, 6))).rejects.toThrow('was aborted');
  });
});
