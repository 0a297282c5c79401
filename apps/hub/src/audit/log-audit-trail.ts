import { Injectable } from '@nestjs/common';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { AuditTrail, type AuditEvent } from './audit-trail';

/** Writes audit events to the structured log. Replaced by the hash-chained database log (audit module). */
@Injectable()
export class LogAuditTrail extends AuditTrail {
  constructor(@InjectPinoLogger('Audit') private readonly logger: PinoLogger) {
    super();
  }

  async record(event: AuditEvent): Promise<void> {
    this.logger.info({ audit: event }, event.action);
  }
}
