import { Injectable } from '@nestjs/common';
import type { Socket } from 'node:net';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/** The hub's Prometheus registry: process metrics plus request durations by route (never by raw URL). */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  readonly httpDuration = new Histogram({
    name: 'tessera_http_request_duration_seconds',
    help: 'HTTP request duration by listener, method, route template and status.',
    labelNames: ['listener', 'method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  /** Bytes on the wire (TLS records included) per listener, counted when each connection closes. */
  readonly wireBytes = new Counter({
    name: 'tessera_listener_bytes_total',
    help: 'Bytes received and sent on the silo and enrollment listeners, TLS included, counted when a connection closes.',
    labelNames: ['listener', 'direction'] as const,
    registers: [this.registry],
  });
  readonly connections = new Counter({
    name: 'tessera_listener_connections_total',
    help: 'Connections accepted by the silo and enrollment listeners (each one a TLS handshake).',
    labelNames: ['listener'] as const,
    registers: [this.registry],
  });

  /** Counts a listener's connections and, when each closes, its bytes both ways. */
  countConnection(listener: 'silo' | 'enroll', socket: Socket): void {
    this.connections.inc({ listener });
    socket.once('close', () => {
      this.wireBytes.inc({ listener, direction: 'received' }, socket.bytesRead);
      this.wireBytes.inc({ listener, direction: 'sent' }, socket.bytesWritten);
    });
  }

  /** Totals over both listeners since the hub started: connections, and bytes both ways of the closed ones. */
  async wireTotals(): Promise<{ connections: number; bytes: number }> {
    const sum = (values: { value: number }[]) => values.reduce((a, v) => a + v.value, 0);
    return {
      connections: sum((await this.connections.get()).values),
      bytes: sum((await this.wireBytes.get()).values),
    };
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'tessera_' });
  }
}
