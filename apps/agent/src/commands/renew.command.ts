import { SiloSession } from '../hub/silo-session';
import type { RegisterAgentCommand } from './agent-command';

/** `tessera-agent renew`: the certificate now, when a third or less of its lifetime remains (or always). */
export const registerRenewCommand: RegisterAgentCommand = (program, { io, stateOf }) => {
  program
    .command('renew')
    .description('renew the certificate now if a third or less of its lifetime remains (or always, with --force)')
    .option('--force', 'renew even if not due')
    .action(async (opts: { force?: boolean }) => {
      const session = new SiloSession(stateOf());
      const renewed = await session.renewIfDue(opts.force ?? false);
      const { serial, notAfter } = session.current.record;
      io.out(
        renewed
          ? `renewed: certificate ${serial} valid until ${notAfter}\n`
          : `not due: certificate ${serial} valid until ${notAfter}\n`,
      );
    });
};
