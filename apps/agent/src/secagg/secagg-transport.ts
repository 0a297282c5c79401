import {
  HubErrorCode,
  SECAGG_API,
  SecAggAdvertisementsView,
  SecAggSessionView,
  SecAggSharesView,
  SecAggUnmaskingView,
} from '@tessera/protocol';
import type { z } from 'zod';
import { AgentError, AgentErrorCode } from '../agent.error';
import { hubCodeOf, jsonOf, refusal } from '../hub/hub-client';
import type { SiloSession } from '../hub/silo-session';
import { SecAggDropout, type SecAggTransport } from './secagg-participant';

/** Answers that mean the round went on without this silo: the stage closed, the session failed, the round closed. */
const DROPPED_OUT: ReadonlySet<string> = new Set([HubErrorCode.CONFLICT, HubErrorCode.ROUND_CLOSED]);

/**
 * Seconds a stage view may wait at the hub for the stage to close (a long poll: the hub answers as soon as it moves
 * the stage); well inside the client's 30 s request timeout. A hub that predates the long poll answers at once.
 */
export const STAGE_WAIT_SECONDS = 10;

/** The hub's secure-aggregation routes of one round over the silo's mutual-TLS connection (SECAGG_API). */
export class HttpSecAggTransport implements SecAggTransport {
  constructor(
    private readonly silo: SiloSession,
    private readonly task: { studyId: string; round: number },
  ) {}

  session(): Promise<SecAggSessionView> {
    return this.read(
      SECAGG_API.session(this.task.studyId, this.task.round),
      SecAggSessionView,
      'the round configuration',
    );
  }

  advertise(advertisement: object): Promise<void> {
    return this.send(SECAGG_API.advertisements(this.task.studyId, this.task.round), advertisement, 'key advertisement');
  }

  advertisements(): Promise<SecAggAdvertisementsView> {
    return this.read(
      `${SECAGG_API.advertisements(this.task.studyId, this.task.round)}?wait=${STAGE_WAIT_SECONDS}`,
      SecAggAdvertisementsView,
      'the advertised keys',
    );
  }

  share(message: object): Promise<void> {
    return this.send(SECAGG_API.shares(this.task.studyId, this.task.round), message, 'share message');
  }

  routedShares(): Promise<SecAggSharesView> {
    return this.read(
      `${SECAGG_API.shares(this.task.studyId, this.task.round)}?wait=${STAGE_WAIT_SECONDS}`,
      SecAggSharesView,
      'the routed shares',
    );
  }

  async uploadMaskedInput(frame: Uint8Array): Promise<void> {
    const url = SECAGG_API.maskedInput(this.task.studyId, this.task.round);
    const res = await this.silo.request('POST', url, {
      body: { bytes: frame, contentType: 'application/octet-stream' },
      timeoutMs: 300_000,
    });
    this.check({ status: res.status, body: jsonOf(res) }, 'masked input');
  }

  unmaskingRequest(): Promise<SecAggUnmaskingView> {
    return this.read(
      `${SECAGG_API.unmasking(this.task.studyId, this.task.round)}?wait=${STAGE_WAIT_SECONDS}`,
      SecAggUnmaskingView,
      'the unmasking request',
    );
  }

  answerUnmasking(response: object): Promise<void> {
    return this.send(SECAGG_API.unmasking(this.task.studyId, this.task.round), response, 'unmasking answer');
  }

  private async read<S extends z.ZodType>(path: string, schema: S, what: string): Promise<z.infer<S>> {
    const res = await this.silo.call('GET', path);
    this.check(res, what);
    const parsed = schema.safeParse(res.body);
    if (!parsed.success) {
      throw new AgentError(
        AgentErrorCode.HUB_REFUSED,
        `The hub's answer with ${what} is not what the protocol allows.`,
      );
    }
    return parsed.data;
  }

  private async send(path: string, body: object, what: string): Promise<void> {
    this.check(await this.silo.call('POST', path, body), what);
  }

  private check(res: { status: number; body: unknown }, what: string): void {
    if (res.status === 200) return;
    const code = hubCodeOf(res.body);
    if (code !== undefined && DROPPED_OUT.has(code)) throw new SecAggDropout(refusal(res, what).message);
    throw refusal(res, what);
  }
}
