import type { StudyLiveMessage } from '@tessera/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';
import { ADMIN, DATABASE_KINDS, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { StudyLiveFeedService } from './study-live-feed.service';

/** Reads an event stream message by message (data lines only), as the console does. */
class StreamReader {
  private buffer = '';
  private readonly decoder = new TextDecoder();
  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  async next(): Promise<StudyLiveMessage> {
    for (;;) {
      const end = this.buffer.indexOf('\n\n');
      if (end !== -1) {
        const block = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => l.slice(6))
          .join('\n');
        if (data) return JSON.parse(data) as StudyLiveMessage;
        continue;
      }
      const { done, value } = await this.reader.read();
      if (done) throw new Error('the stream ended');
      this.buffer += this.decoder.decode(value, { stream: true });
    }
  }
}

describe.each(DATABASE_KINDS)('live study events on the %s database', (kind) => {
  let hub: TestHub | undefined;
  let admin: Record<string, string>;
  let study: StudyView;

  beforeAll(async () => {
    const started = await startTestHub(kind);
    hub = started;
    admin = await signIn(started, ADMIN.username, ADMIN.password);
    const silos: string[] = [];
    for (const name of ['North', 'South']) {
      const res = await api(started, 'POST', '/api/silos', {
        headers: admin,
        json: { name, contact: 'it@example.org' },
      });
      silos.push((res.body as { silo: { id: string } }).silo.id);
    }
    study = (await api(started, 'POST', '/api/studies', { headers: admin, json: { plan: heartDiseasePlan(silos) } }))
      .body as StudyView;
  });
  afterAll(async () => {
    await hub?.dispose();
  });

  function running(): TestHub {
    if (!hub) throw new Error('the hub is not running');
    return hub;
  }

  it('streams the study at once and again when it changes, to administrators and auditors', async () => {
    await api(running(), 'POST', '/api/users', {
      headers: admin,
      json: { username: 'aud', password: 'auditor password 1', role: 'auditor' },
    });
    const auditor = await signIn(running(), 'aud', 'auditor password 1');
    const abort = new AbortController();
    const res = await fetch(`${running().url}/api/studies/${study.id}/events`, {
      headers: auditor,
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    expect(res.headers.get('cache-control')).toContain('no-cache');
    const stream = new StreamReader(res.body!.getReader());
    const first = await stream.next();
    expect(first).toMatchObject({ type: 'study', study: { id: study.id, status: 'draft' }, rounds: [] });

    expect((await api(running(), 'POST', `/api/studies/${study.id}/submit`, { headers: admin })).status).toBe(200);
    const second = await stream.next();
    expect(second.study.status).toBe('awaiting_approvals');
    expect(running().app.get(StudyLiveFeedService).openStreams()).toBe(1);

    abort.abort();
    await expect.poll(() => running().app.get(StudyLiveFeedService).openStreams(), { timeout: 5000 }).toBe(0);
  });

  it('answers plain errors before any stream opens', async () => {
    const unknown = await api(running(), 'GET', '/api/studies/00000000-0000-4000-8000-000000000000/events', {
      headers: admin,
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ error: 'NOT_FOUND' });
    const anonymous = await api(running(), 'GET', `/api/studies/${study.id}/events`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ error: 'UNAUTHENTICATED' });
  });

  it('ends open streams when the hub stops, so shutdown does not wait for them', async () => {
    const res = await fetch(`${running().url}/api/studies/${study.id}/events`, { headers: admin });
    const reader = res.body!.getReader();
    await new StreamReader(reader).next();
    const stopping = running().dispose();
    hub = undefined;
    let done = false;
    while (!done) done = (await reader.read()).done;
    await stopping;
    expect(done).toBe(true);
  });
});
