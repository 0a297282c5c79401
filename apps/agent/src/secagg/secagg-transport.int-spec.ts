import { decodeMaskedInputFrame, encodeMaskedInputFrame, SECAGG_API } from '@tessera/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentErrorCode } from '../agent.error';
import { SiloSession } from '../hub/silo-session';
import { answerJson, startTlsTestHub, type TlsTestHub } from '../testing/tls-hub.test-util';
import { SecAggDropout } from './secagg-participant';
import { HttpSecAggTransport, STAGE_WAIT_SECONDS } from './secagg-transport';

const STUDY = '6f1c1bb4-4b7a-4ff5-9d8e-2a3e3f0c0d11';
const UNTIL = '2026-12-06T10:00:00.000Z';

let hub: TlsTestHub | undefined;
afterEach(async () => {
  await hub?.close();
  hub = undefined;
});

/** The transport over real mutual TLS to a test server answering each route as the hub does. */
async function transportTo(
  answer: (method: string, url: string, body: Buffer) => [number, unknown],
): Promise<HttpSecAggTransport> {
  hub = await startTlsTestHub();
  hub.handle((req, res, body) => {
    const [status, json] = answer(req.method ?? '', req.url ?? '', body);
    answerJson(res, status, json);
  });
  return new HttpSecAggTransport(new SiloSession(hub.state), { studyId: STUDY, round: 2 });
}

describe('the agent secure-aggregation transport (real mutual TLS)', () => {
  it('reads stage views, sends JSON messages and the binary masked-input frame to the round routes', async () => {
    // Stage views are long polls: the hub may hold each one up to STAGE_WAIT_SECONDS.
    const held = (path: string) => `${path}?wait=${STAGE_WAIT_SECONDS}`;
    const t = await transportTo((method, url) => {
      if (method === 'GET' && url === held(SECAGG_API.advertisements(STUDY, 2))) {
        return [200, { ready: false, stage: 'advertise', until: UNTIL }];
      }
      if (method === 'GET' && url === held(SECAGG_API.unmasking(STUDY, 2)))
        return [200, { ready: true, request: null }];
      return [200, { stage: 'advertise', accepted: true, receivedAt: UNTIL }];
    });
    expect(await t.advertisements()).toEqual({ ready: false, stage: 'advertise', until: UNTIL });
    expect(await t.unmaskingRequest()).toEqual({ ready: true, request: null });
    await t.advertise({ participantId: 'x' });
    const frame = encodeMaskedInputFrame({ participantId: 'x' }, new Uint8Array([1, 2, 3, 4]));
    await t.uploadMaskedInput(frame);
    const seen = hub!.seen;
    expect(seen.map((r) => [r.method, r.url])).toEqual([
      ['GET', held(SECAGG_API.advertisements(STUDY, 2))],
      ['GET', held(SECAGG_API.unmasking(STUDY, 2))],
      ['POST', SECAGG_API.advertisements(STUDY, 2)],
      ['POST', SECAGG_API.maskedInput(STUDY, 2)],
    ]);
    expect(seen.every((r) => r.clientAuthorized)).toBe(true);
    expect(JSON.parse(seen[2]!.body.toString('utf8'))).toEqual({ participantId: 'x' });
    expect(seen[3]!.contentType).toBe('application/octet-stream');
    expect([...decodeMaskedInputFrame(seen[3]!.body).packedVector]).toEqual([1, 2, 3, 4]);
  });

  it('turns "stage closed" and "round closed" into a dropout, other refusals into the hub refusal they are', async () => {
    const answers: [number, unknown][] = [
      [409, { error: 'CONFLICT', message: "The round's secure aggregation is at stage 'upload'" }],
      [409, { error: 'ROUND_CLOSED', message: 'Round 2 is closed.' }],
      [400, { error: 'UPDATE_MALFORMED', message: 'A share from a to b is not allowed.' }],
      [200, { ready: true }],
    ];
    const t = await transportTo(() => answers.shift()!);
    await expect(t.share({})).rejects.toBeInstanceOf(SecAggDropout);
    await expect(t.answerUnmasking({})).rejects.toThrow(/Round 2 is closed/);
    await expect(t.share({})).rejects.toMatchObject({ code: AgentErrorCode.HUB_REFUSED, hubCode: 'UPDATE_MALFORMED' });
    // A view the protocol does not allow (ready without the advertisements) is refused, not trusted.
    await expect(t.advertisements()).rejects.toMatchObject({ code: AgentErrorCode.HUB_REFUSED });
  });
});
