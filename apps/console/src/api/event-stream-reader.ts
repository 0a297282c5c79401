// Reads a server-sent events stream from a fetch() body (https://html.spec.whatwg.org/multipage/server-sent-events.html
// §9.2.6 "Interpreting an event stream"), because EventSource cannot send the Authorization header.

/** Splits an event stream into the data of its messages; feed it text chunks as they arrive. */
export class EventStreamParser {
  private buffer = '';
  private data: string[] = [];

  /** Returns the data of every message completed by this chunk. Comment lines (heartbeats) produce nothing. */
  push(chunk: string): string[] {
    this.buffer += chunk;
    const out: string[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone \r at the very end may be the first half of \r\n: wait for more.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      if (line === '') {
        if (this.data.length > 0) out.push(this.data.join('\n'));
        this.data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') this.data.push(value);
    }
    return out;
  }
}

/** Reads `body` to its end, calling `onData` with each message's data. Resolves when the server ends the stream. */
export async function readEventStream(body: ReadableStream<Uint8Array>, onData: (data: string) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new EventStreamParser();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (const data of parser.push(decoder.decode(value, { stream: true }))) onData(data);
    }
  } finally {
    reader.releaseLock();
  }
}
