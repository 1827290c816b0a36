/**
 * The service's Prometheus metrics, kept by prom-client in a registry of their own (one per app,
 * so apps built side by side in one process do not mix their figures): process and event-loop
 * metrics, request and operation duration histograms, and xporta's counters.
 *
 * Callers name a family and its labels (`inc('xporta_records_total', { direction, kind }, n)`);
 * each family's label names are fixed here, and an unknown family is a programming error.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import type { Labels, MetricsRecorder, Operation, Outcome } from './metrics-recorder.js';

export type { Operation, Outcome } from './metrics-recorder.js';

/** Seconds: from a small account's export to a host import of hours. */
const OPERATION_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200];
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export class Metrics implements MetricsRecorder {
  readonly registry = new Registry();
  private readonly counters = new Map<string, Counter>();
  private readonly gauges = new Map<string, Gauge>();
  private readonly histograms = new Map<string, Histogram>();

  /** `processMetrics: false` leaves out process and event-loop metrics (a registry nobody scrapes, as in tests). */
  constructor(options: { readonly processMetrics?: boolean } = {}) {
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    const counter = (name: string, help: string, labelNames: string[] = []): void => {
      this.counters.set(name, new Counter({ name, help, labelNames, registers: [this.registry] }));
    };
    const gauge = (name: string, help: string, labelNames: string[] = []): void => {
      this.gauges.set(name, new Gauge({ name, help, labelNames, registers: [this.registry] }));
    };
    const histogram = (name: string, help: string, labelNames: string[], buckets: number[]): void => {
      this.histograms.set(name, new Histogram({ name, help, labelNames, buckets, registers: [this.registry] }));
    };
    counter('xporta_http_requests_total', 'HTTP requests by method, route and status.', ['method', 'route', 'status']);
    counter('xporta_bytes_streamed_total', 'Bytes of XEP-0227 streamed, by direction (export: sent, import: received).', ['direction']);
    counter('xporta_records_total', 'Records exported, imported or checked by a dry run, by direction (export, import, dry_run) and data kind.', ['direction', 'kind']);
    counter('xporta_errors_total', 'Errors answered, by problem type.', ['type']);
    counter('xporta_imports_total', 'Imports into one account that changed storage (dry runs apart), by source (upload, url, xmpp, cli, move) and outcome.', ['source', 'outcome']);
    counter('xporta_dry_runs_total', 'Dry runs (imports checked, nothing written), by scope (user, host) and outcome.', ['scope', 'outcome']);
    counter('xporta_host_transfers_total', 'Whole-host transfers, by direction (export, import), dry run and outcome.', ['direction', 'dry_run', 'outcome']);
    counter('xporta_jobs_total', 'Background jobs entering a state (started, succeeded, failed, cancelled), by type.', ['type', 'state']);
    gauge('xporta_imports_in_progress', 'Imports running now.');
    gauge('xporta_pulls_in_progress', 'Pulls from other XMPP servers running now (xmppClient.maxConcurrentPulls at most).');
    gauge('xporta_component_connected', '1 while the XMPP component is connected.');
    histogram('xporta_http_request_duration_seconds', 'HTTP request durations (for a streamed answer: until it is sent), by method and route.', ['method', 'route'], REQUEST_BUCKETS);
    histogram('xporta_operation_duration_seconds', 'Durations of exports, imports, dry runs and host transfers, by operation and outcome.', ['operation', 'outcome'], OPERATION_BUCKETS);
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const counter = this.counters.get(name);
    if (!counter) throw new Error(`unknown counter ${name}`);
    counter.inc(labels, by);
  }

  set(name: string, value: number, labels: Labels = {}): void {
    const gauge = this.gauges.get(name);
    if (!gauge) throw new Error(`unknown gauge ${name}`);
    gauge.set(labels, value);
  }

  observe(name: string, labels: Labels, value: number): void {
    const histogram = this.histograms.get(name);
    if (!histogram) throw new Error(`unknown histogram ${name}`);
    histogram.observe(labels, value);
  }

  /** Starts timing `operation`; call the result once, with how it ended. */
  time(operation: Operation): (outcome: Outcome) => void {
    const started = process.hrtime.bigint();
    let done = false;
    return (outcome) => {
      if (done) return;
      done = true;
      this.observe('xporta_operation_duration_seconds', { operation, outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    };
  }

  /** The Prometheus text exposition (format 0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
