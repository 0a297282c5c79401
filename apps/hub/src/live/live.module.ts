import { Module } from '@nestjs/common';
import { RoundsModule } from '../rounds/rounds.module';
import { SessionsModule } from '../sessions/sessions.module';
import { StudiesModule } from '../studies/studies.module';
import { StudyEventsController } from './study-events.controller';
import { StudyLiveFeedService } from './study-live-feed.service';

/**
 * A study's live events (server-sent), ended when the session that opened the stream ends. Reads studies and rounds;
 * exports nothing.
 */
@Module({
  imports: [StudiesModule, RoundsModule, SessionsModule],
  controllers: [StudyEventsController],
  providers: [StudyLiveFeedService],
})
export class LiveModule {}
