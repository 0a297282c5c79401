import { randomUUID } from 'node:crypto';
import { HubErrorCode } from '@tessera/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentErrorCode } from '../agent.error';
import { buildPlan, buildStudy } from '../testing/study.test-util';
import { textContaining } from '../testing/matchers.test-util';
import { answerJson as json, startTlsTestHub, type TlsTestHub } from '../testing/tls-hub.test-util';
import { SiloSession } from './silo-session';
import { HubUnavailableError, retryAfterMsOf, SiloStudyTransport } from './study-transport';

let hub: TlsTestHub;
let transport: SiloStudyTransport;

beforeAll(async () => {
  // A real mutual-TLS server: its own CA, a server certificate for 127.0.0.1 and an enrolled silo.
  hub = await startTlsTestHub();
  transport = new SiloStudyTransport(new SiloSession(hub.state));
});

afterAll(() => hub.close());

describe('SiloStudyTransport over mutual TLS', () => {
  it('uploads an update as octet-stream, byte for byte, and parses the receipt', async () => {
    const studyId = randomUUID();
    const receipt = {
      studyId,
      siloId: randomUUID(),
      round: 3,
      attempt: 1,
      updateSha256: 'b'.repeat(64),
      receivedAt: new Date().toISOString(),
    };
    hub.handle((_req, res) => json(res, 200, receipt));
    const frame = Uint8Array.from({ length: 1000 }, (_, i) => (i * 37) % 256);
    await expect(transport.uploadUpdate(studyId, 3, frame)).resolves.toEqual(receipt);
    const request = hub.seen.at(-1)!;
    expect(request).toMatchObject({
      method: 'POST',
      url: `/silo/v1/studies/${studyId}/rounds/3/update`,
      contentType: 'application/octet-stream',
      clientAuthorized: true,
    });
    expect(request.body.equals(Buffer.from(frame))).toBe(true);
  });

  it('downloads a binary model and refuses one larger than expected', async () => {
    const model = Buffer.from(Float32Array.from([0.5, -1.25, 3]).buffer);
    hub.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(model);
    });
    const bytes = await transport.downloadModel('c'.repeat(64), 12);
    expect(Buffer.from(bytes).equals(model)).toBe(true);
    expect(hub.seen.at(-1)!.url).toBe(`/silo/v1/blobs/${'c'.repeat(64)}`);

    hub.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.alloc(4096));
    });
    await expect(transport.downloadModel('c'.repeat(64), 12)).rejects.toMatchObject({
      code: AgentErrorCode.HUB_REFUSED,
    });
  });

  it('long-polls with the wait in the query, validates studies, and can be cancelled', async () => {
    const study = buildStudy(buildPlan());
    hub.handle((_req, res) => json(res, 200, [study]));
    await expect(transport.listStudies()).resolves.toEqual([study]);

    hub.handle((_req, res) => json(res, 200, { tasks: [] }));
    await expect(transport.pollTasks(7)).resolves.toEqual([]);
    expect(hub.seen.at(-1)!.url).toBe('/silo/v1/tasks?wait=7');

    hub.handle(() => undefined); // never answers
    const stop = new AbortController();
    const poll = transport.pollTasks(20, stop.signal);
    setImmediate(() => stop.abort());
    await expect(poll).rejects.toMatchObject({ code: AgentErrorCode.HUB_UNREACHABLE });
  });

  it('maps 401/403 to IDENTITY_REFUSED and other refusals to HUB_REFUSED with the status and message', async () => {
    hub.handle((_req, res) =>
      json(res, 401, { error: 'SILO_IDENTITY_REFUSED', message: 'certificate revoked', correlationId: 'x' }),
    );
    await expect(transport.listStudies()).rejects.toMatchObject({
      code: AgentErrorCode.IDENTITY_REFUSED,
      httpStatus: 401,
      message: textContaining('certificate revoked'),
    });
    hub.handle((_req, res) =>
      json(res, 409, { error: 'ROUND_CLOSED', message: 'round 3 is closed', correlationId: 'y' }),
    );
    await expect(transport.uploadUpdate(randomUUID(), 3, new Uint8Array(8))).rejects.toMatchObject({
      code: AgentErrorCode.HUB_REFUSED,
      httpStatus: 409,
      hubCode: 'ROUND_CLOSED',
      message: textContaining('round 3 is closed'),
    });
  });

  it('keeps a 403 that refuses one request (NOT_A_PARTICIPANT) a refusal: the agent is not stopped for it', async () => {
    hub.handle((_req, res) =>
      json(res, 403, { error: 'NOT_A_PARTICIPANT', message: 'not in this study', correlationId: 'n' }),
    );
    await expect(transport.uploadUpdate(randomUUID(), 1, new Uint8Array(8))).rejects.toMatchObject({
      code: AgentErrorCode.HUB_REFUSED,
      httpStatus: 403,
      hubCode: 'NOT_A_PARTICIPANT',
    });
    hub.handle((_req, res) => json(res, 403, { error: 'SILO_SUSPENDED', message: 'suspended', correlationId: 's' }));
    await expect(transport.uploadUpdate(randomUUID(), 1, new Uint8Array(8))).rejects.toMatchObject({
      code: AgentErrorCode.IDENTITY_REFUSED,
      hubCode: 'SILO_SUSPENDED',
    });
  });

  it("carries a refused decision's code: a closed study (STUDY_STATE) is not a changed plan (STALE_PLAN)", async () => {
    for (const hubCode of [HubErrorCode.STUDY_STATE, HubErrorCode.STALE_PLAN]) {
      hub.handle((_req, res) =>
        json(res, 409, { error: hubCode, message: `refused (${hubCode})`, correlationId: 'd' }),
      );
      await expect(
        transport.decide(randomUUID(), { planHash: 'a'.repeat(64), decision: 'approve' }),
      ).rejects.toMatchObject({ code: AgentErrorCode.HUB_REFUSED, httpStatus: 409, hubCode });
    }
  });

  it('maps 503 with Retry-After to a retryable HUB_UNREACHABLE carrying the wait, and a 409 stays a refusal', async () => {
    hub.handle((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '7' });
      res.end(JSON.stringify({ error: 'UNAVAILABLE', message: 'database unavailable', correlationId: 'z' }));
    });
    const err: unknown = await transport.uploadUpdate(randomUUID(), 3, new Uint8Array(8)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubUnavailableError);
    expect(err).toMatchObject({ code: AgentErrorCode.HUB_UNREACHABLE, httpStatus: 503, retryAfterMs: 7000 });
    expect(retryAfterMsOf('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000);
    expect(retryAfterMsOf('soon')).toBeNull();
    expect(retryAfterMsOf('86400')).toBe(300_000); // bounded: a wait of a day is not believed
  });
});

// The JSON calls go through the session's openapi-fetch client typed by the hub's document: same paths, same bodies.
describe('SiloStudyTransport, typed by the OpenAPI document', () => {
  it('sends a decision, a failure report and a task poll to the documented paths with their JSON bodies', async () => {
    const studyId = randomUUID();
    hub.handle((_req, res) => json(res, 200, { accepted: true }));
    const failure = { round: 2, attempt: 1, code: 'DATA_SCHEMA_MISMATCH', message: 'no usable row' };
    await transport.reportFailure(studyId, failure as Parameters<typeof transport.reportFailure>[1]);
    expect(hub.seen.at(-1)).toMatchObject({
      method: 'POST',
      url: `/silo/v1/studies/${studyId}/rounds/2/failure`,
      contentType: 'application/json',
    });
    expect(JSON.parse(hub.seen.at(-1)!.body.toString('utf8'))).toEqual(failure);

    hub.handle((_req, res) => json(res, 200, { tasks: [] }));
    await expect(transport.pollTasks(0)).resolves.toEqual([]);
    expect(hub.seen.at(-1)).toMatchObject({ method: 'GET', url: '/silo/v1/tasks?wait=0' });
  });
});
