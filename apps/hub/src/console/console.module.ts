import { Module, RequestMethod, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { ConsoleStaticMiddleware } from './console-static.middleware';

/** The web console's static files at `/` (see ConsoleStaticMiddleware for what it never touches). */
@Module({ providers: [ConsoleStaticMiddleware] })
export class ConsoleModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(ConsoleStaticMiddleware).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
  }
}
