import { Controller, Get } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  TypeOrmHealthIndicator,
  type HealthCheckResult,
  type HealthIndicatorResult,
} from '@nestjs/terminus';
import { Access } from '../access/access.decorator';
import { BlobStore } from '../blobs/blob-store';
import { CachedProbe } from './storage-probe.util';
import { Endpoint } from '../openapi/endpoint.decorator';

/**
 * Liveness and readiness, for load balancers, Docker's HEALTHCHECK and Kubernetes probes.
 * - `/health/live`: the process answers HTTP. Never looks at the database, so an orchestrator does not restart a
 *   healthy hub during a database outage (it would not help, and would drop in-flight work).
 * - `/health/ready` and `/health` (the same check): the hub can do its work: the database answers and the blob
 *   store takes a real write (write, fsync, delete a probe file; reused for 5 s). A read-only or full blob store
 *   makes the hub not ready, where it used to report healthy while refusing every upload.
 */
@ApiTags('operations')
@Access('public')
@Controller('health')
export class HealthController {
  private readonly storage: CachedProbe;

  constructor(
    private readonly health: HealthCheckService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    blobs: BlobStore,
  ) {
    this.storage = new CachedProbe(() => blobs.probeWritable());
  }

  /** 200 when the hub and its database answer and its blob store can be written; 503 otherwise. */
  @Get()
  @HealthCheck()
  @Endpoint({
    summary: 'Readiness: the database answers and the blob store takes a write (503 otherwise)',
    answer: { schema: 'HealthView' },
  })
  check(): Promise<HealthCheckResult> {
    return this.readiness();
  }

  @Get('ready')
  @HealthCheck()
  @Endpoint({ summary: 'Readiness (the same check as /health)', answer: { schema: 'HealthView' } })
  ready(): Promise<HealthCheckResult> {
    return this.readiness();
  }

  /** 200 whenever the process serves requests; depends on nothing else. */
  @Get('live')
  @HealthCheck()
  @Endpoint({ summary: 'Liveness: the process serves requests', answer: { schema: 'HealthView' } })
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  private readiness(): Promise<HealthCheckResult> {
    return this.health.check([() => this.db.pingCheck('database', { timeout: 3000 }), () => this.storageCheck()]);
  }

  private async storageCheck(): Promise<HealthIndicatorResult> {
    const probe = this.indicators.check('storage');
    const result = await this.storage.result();
    return result.ok ? probe.up() : probe.down({ message: result.reason });
  }
}
