import { Module } from '@nestjs/common';
import { SecAggController } from './secagg.controller';
import { SecAggMessagesService } from './secagg-messages.service';
import { SecAggSessionsService } from './secagg-sessions.service';
import { SecAggStageMachine } from './secagg-stage-machine.service';
import { SecAggRepository } from './secagg.repository';

/** Secure aggregation at the hub (docs/secure-aggregation.md): the protocol's stages and their stored state. */
@Module({
  controllers: [SecAggController],
  providers: [SecAggRepository, SecAggStageMachine, SecAggMessagesService, SecAggSessionsService],
  exports: [SecAggSessionsService],
})
export class SecAggModule {}
