import { describe, expect, it } from 'vitest';
import { EventStreamParser, readEventStream } from './event-stream-reader.js';

describe('event stream parser', () => {
  it('yields the data of each message, skipping comments and other fields, across chunk boundaries', () => {
    const stream = 'retry: 2000\n\n: heartbeat\n\ndata: {"a":1}\n\nevent: x\ndata: line 1\ndata: line 2\n\n';
    for (const size of [1, 2, 3, 7, stream.length]) {
      const parser = new EventStreamParser();
      const out: string[] = [];
      for (let i = 0; i < stream.length; i += size) out.push(...parser.push(stream.slice(i, i + size)));
      expect(out, `chunks of ${size}`).toEqual(['{"a":1}', 'line 1\nline 2']);
    }
  });

  it('accepts CRLF and CR line ends and a field without a space after the colon', () => {
    const parser = new EventStreamParser();
    expect(parser.push('data:one\r\n\r\ndata: two\r')).toEqual(['one']);
    // A CR that ends a chunk may be half of a CRLF: the blank line is known only once the next byte arrives.
    expect(parser.push('\r')).toEqual([]);
    expect(parser.push('\n')).toEqual(['two']);
  });

  it('reads a byte stream to its end, decoding UTF-8 split between chunks', async () => {
    const bytes = new TextEncoder().encode('data: ε = 1.5\n\ndata: δ\n\n');
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 3) controller.enqueue(bytes.slice(i, i + 3));
        controller.close();
      },
    });
    const seen: string[] = [];
    await readEventStream(body, (d) => seen.push(d));
    expect(seen).toEqual(['ε = 1.5', 'δ']);
  });
});
