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
  let hub: TestHub;
  let admin: Record<string, string>;
  let study: StudyView;

  beforeAll(async () => {
    hub = await startTestHub(kind);
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    const silos: string[] = [];
    for (const name of ['North', 'South']) {
      const res = await api(hub, 'POST', '/api/silos', { headers: admin, json: { name, contact: 'it@example.org' } });
      silos.push((res.body as { silo: { id: string } }).silo.id);
    }
    study = (await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan: heartDiseasePlan(silos) } }))
      .body as StudyView;
  });
  afterAll(async () => {
    await hub?.dispose();
  });

  it('streams the study at once and again when it changes, to administrators and auditors', async () => {
    await api(hub, 'POST', '/api/users', {
      headers: admin,
      json: { username: 'aud', password: 'auditor password 1', role: 'auditor' },
    });
    const auditor = await signIn(hub, 'aud', 'auditor password 1');
    const abort = new AbortController();
    const res = await fetch(`${hub.url}/api/studies/${study.id}/events`, { headers: auditor, signal: abort.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    expect(res.headers.get('cache-control')).toContain('no-cache');
    const stream = new StreamReader(res.body!.getReader());
    const first = await stream.next();
    expect(first).toMatchObject({ type: 'study', study: { id: study.id, status: 'draft' }, rounds: [] });

    expect((await api(hub, 'POST', `/api/studies/${study.id}/submit`, { headers: admin })).status).toBe(200);
    const second = await stream.next();
    expect(second.study.status).toBe('awaiting_approvals');
    expect(hub.app.get(StudyLiveFeedService).openStreams()).toBe(1);

    abort.abort();
    await expect.poll(() => hub.app.get(StudyLiveFeedService).openStreams(), { timeout: 5000 }).toBe(0);
  });

  it('answers plain errors before any stream opens', async () => {
    const unknown = await api(hub, 'GET', '/api/studies/00000000-0000-4000-8000-000000000000/events', {
      headers: admin,
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ error: 'NOT_FOUND' });
    const anonymous = await api(hub, 'GET', `/api/studies/${study.id}/events`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ error: 'UNAUTHENTICATED' });
  });
});
