import { Controller, Get } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { AuditSigningKeyService, type HubPublicKey } from '../audit/audit-signing-key.service';
import { Access } from '../access/access.decorator';
import { Endpoint } from '../openapi/endpoint.decorator';

/**
 * The hub's audit key for agents, on the mutual-TLS listener: an agent pins it on first use and verifies every
 * upload receipt against it. Path `/silo/v1/audit/public-key` (hard-coded in the agent; not in libs/protocol).
 */
@ApiTags('silo protocol')
@Controller('silo/v1/audit')
export class SiloAuditController {
  constructor(private readonly keys: AuditSigningKeyService) {}

  @Access('silo')
  @Get('public-key')
  @Endpoint({ summary: 'The hub’s audit key, to verify upload receipts', answer: { schema: 'HubPublicKey' } })
  publicKey(): Promise<HubPublicKey> {
    return this.keys.publicKey();
  }
}
