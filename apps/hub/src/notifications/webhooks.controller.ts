import {
  Body,
  Controller,
  DefaultValuePipe,
  Delete,
  Get,
  HttpCode,
  Param,
  ParseIntPipe,
  ParseUUIDPipe,
  Patch,
  Post,
  Query,
  Req,
} from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { Access } from '../access/access.decorator';
import { actorOf, type AuthenticatedRequest } from '../sessions/current-user';
import { CreateWebhookDto, UpdateWebhookDto } from './dto/webhook-endpoint.dto';
import { WEBHOOK_EVENT_TYPES } from './webhook-events.util';
import type { CreatedWebhookView, WebhookDeliveryView, WebhookEndpointView } from './webhook-views';
import { WebhooksService } from './webhooks.service';
import { Endpoint } from '../openapi/endpoint.decorator';

/** Webhook endpoints and their delivery log (docs/operator-guide.md, "Notifications"). Administrators only. */
@ApiTags('webhooks')
@ApiBearerAuth()
@Access('admin')
@Controller('api/webhooks')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Get()
  @Endpoint({ summary: 'List webhook endpoints', answer: { schema: 'WebhookEndpointView', list: true } })
  list(): Promise<WebhookEndpointView[]> {
    return this.webhooks.list();
  }

  /** The events an endpoint can subscribe to. */
  @Get('event-types')
  @Endpoint({ summary: 'The events an endpoint can subscribe to', answer: { schema: 'WebhookEventTypesView' } })
  eventTypes(): { eventTypes: readonly string[] } {
    return { eventTypes: WEBHOOK_EVENT_TYPES };
  }

  /** Creates an endpoint; the answer holds its signing secret, which no later answer shows again. */
  @Post()
  @Endpoint({
    summary: 'Create a webhook endpoint (its signing secret is shown once)',
    answer: { schema: 'CreatedWebhookView' },
  })
  create(@Body() dto: CreateWebhookDto, @Req() req: AuthenticatedRequest): Promise<CreatedWebhookView> {
    return this.webhooks.create(dto, actorOf(req));
  }

  @Get(':id')
  @Endpoint({ summary: 'Read a webhook endpoint', answer: { schema: 'WebhookEndpointView' } })
  get(@Param('id', new ParseUUIDPipe()) id: string): Promise<WebhookEndpointView> {
    return this.webhooks.get(id);
  }

  @Patch(':id')
  @Endpoint({ summary: 'Change a webhook endpoint', answer: { schema: 'WebhookEndpointView' } })
  update(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() dto: UpdateWebhookDto,
    @Req() req: AuthenticatedRequest,
  ): Promise<WebhookEndpointView> {
    return this.webhooks.update(id, dto, actorOf(req));
  }

  @Delete(':id')
  @HttpCode(204)
  @Endpoint({ summary: 'Delete a webhook endpoint and its deliveries', answer: { empty: true } })
  remove(@Param('id', new ParseUUIDPipe()) id: string, @Req() req: AuthenticatedRequest): Promise<void> {
    return this.webhooks.remove(id, actorOf(req));
  }

  /** The endpoint's deliveries, newest first, with every attempt (status code, duration, error). */
  @Get(':id/deliveries')
  @Endpoint({
    summary: 'An endpoint’s deliveries with every attempt',
    answer: { schema: 'WebhookDeliveryView', list: true },
  })
  deliveries(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Query('limit', new DefaultValuePipe(50), ParseIntPipe) limit: number,
  ): Promise<WebhookDeliveryView[]> {
    return this.webhooks.deliveries(id, limit);
  }

  /** Queues a `webhook.test` event for this endpoint. */
  @Post(':id/test')
  @HttpCode(202)
  @Endpoint({ summary: 'Queue a webhook.test event for an endpoint', answer: { schema: 'WebhookDeliveryView' } })
  sendTest(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Req() req: AuthenticatedRequest,
  ): Promise<WebhookDeliveryView> {
    return this.webhooks.sendTest(id, actorOf(req));
  }
}
