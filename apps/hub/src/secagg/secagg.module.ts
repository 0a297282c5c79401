import { Module } from '@nestjs/common';
import { SecAggController } from './secagg.controller';
import { SecAggSessionsService } from './secagg-sessions.service';

/** Secure aggregation at the hub (docs/secure-aggregation.md): the protocol's stages and their stored state. */
@Module({
  controllers: [SecAggController],
  providers: [SecAggSessionsService],
  exports: [SecAggSessionsService],
})
export class SecAggModule {}
