import { Controller, Get, Header } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { Access } from '../access/access.decorator';
import { MetricsService } from './metrics.service';
import { Endpoint } from '../openapi/endpoint.decorator';

@ApiTags('operations')
@Access('public')
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  /** Prometheus text format. Operators who expose the API listener beyond their network should block /metrics at the proxy. */
  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4')
  @Endpoint({
    summary: 'Prometheus metrics',
    answer: { media: ['text/plain'], description: 'Prometheus text format 0.0.4.' },
  })
  scrape(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}
