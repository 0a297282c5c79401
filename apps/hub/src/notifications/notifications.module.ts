import { Module, type DynamicModule } from '@nestjs/common';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import { WebhookOutboxRepository } from './webhook-outbox.repository';
import { WebhookOutbox } from './webhook-outbox.service';
import { WebhooksController } from './webhooks.controller';
import { WebhooksRepository } from './webhooks.repository';
import { WebhooksService } from './webhooks.service';

/**
 * Notifications by signed webhooks (docs/operator-guide.md, "Notifications"): administrators' endpoints, and the
 * outbox that turns audited study events into signed, retried deliveries.
 */
@Module({})
export class NotificationsModule {
  static forRoot(config: HubConfig): DynamicModule {
    return {
      module: NotificationsModule,
      controllers: [WebhooksController],
      providers: [
        { provide: HUB_CONFIG, useValue: config },
        WebhooksRepository,
        WebhooksService,
        WebhookOutboxRepository,
        WebhookOutbox,
      ],
      exports: [WebhooksService],
    };
  }
}
