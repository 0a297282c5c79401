import { parseCertificate } from '@tessera/pki';
import { SiloSelf } from '@tessera/protocol';
import { AgentError } from '../agent.error';
import { jsonOf } from '../hub/hub-client';
import { rawAnswerOf, SiloSession } from '../hub/silo-session';
import type { AgentState } from '../state/agent-state';
import type { RegisterAgentCommand } from './agent-command';

export interface AgentStatus {
  siloId: string;
  siloName: string;
  hubSiloUrl: string;
  certificate: { serial: string; notAfter: string; daysLeft: number; renewalDue: boolean };
  hub: { reachable: true; siloStatus: string } | { reachable: false; error: string };
}

/** Identity, certificate expiry and whether the hub answers this agent over mutual TLS. */
export async function status(state: AgentState, now = new Date()): Promise<AgentStatus> {
  const session = new SiloSession(state, () => now);
  const { record, certificatePem } = session.current;
  const cert = parseCertificate(certificatePem);
  let hub: AgentStatus['hub'];
  try {
    const res = rawAnswerOf((await session.api.GET('/silo/v1/me', { parseAs: 'stream' })).response);
    const answer = jsonOf(res);
    const body = SiloSelf.safeParse(answer);
    hub =
      res.status === 200 && body.success
        ? { reachable: true, siloStatus: body.data.status }
        : { reachable: false, error: (answer as { message?: string } | undefined)?.message ?? `HTTP ${res.status}` };
  } catch (err) {
    hub = { reachable: false, error: err instanceof AgentError ? err.message : String(err) };
  }
  return {
    siloId: record.siloId,
    siloName: record.siloName,
    hubSiloUrl: record.hubSiloUrl,
    certificate: {
      serial: cert.serialHex,
      notAfter: cert.notAfter.toISOString(),
      daysLeft: Math.floor((cert.notAfter.getTime() - now.getTime()) / 86_400_000),
      renewalDue: session.renewalDue(),
    },
    hub,
  };
}

export function formatStatus(s: AgentStatus): string {
  return [
    `silo:         ${s.siloName} (${s.siloId})`,
    `hub:          ${s.hubSiloUrl} — ${s.hub.reachable ? `reachable, silo ${s.hub.siloStatus}` : `NOT reachable: ${s.hub.error}`}`,
    `certificate:  serial ${s.certificate.serial}, expires ${s.certificate.notAfter} (${s.certificate.daysLeft} days)` +
      (s.certificate.renewalDue ? ' — renewal due' : ''),
  ].join('\n');
}

/** `tessera-agent status`: exits 1 when the hub does not answer. */
export const registerStatusCommand: RegisterAgentCommand = (program, { io, result, stateOf }) => {
  program
    .command('status')
    .description("show this agent's identity, certificate expiry and whether the hub answers it")
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const s = await status(stateOf());
      io.out(opts.json ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s) + '\n');
      if (!s.hub.reachable) result.exitCode = 1;
    });
};
