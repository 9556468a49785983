// GET /metrics: prom-client does the exposition (Prometheus text, or OpenMetrics when the scraper
// asks for it), and every value is read from shared memory when the scrape comes: the workers
// never call prom-client, they only bump their own typed-array rows (src/stats/).
import client from 'prom-client';
import { COUNTERS, type Counter as CounterName, type StatsSnapshot } from '../stats/counters.ts';
import { LATENCY_BUCKETS, type MetricsSnapshot } from '../stats/metrics.ts';
import type { Supervisor } from '../supervisor/supervisor.ts';

/** Counters that are really reasons a connection was refused: one family, a `reason` label. */
const REJECTIONS: Partial<Record<CounterName, string>> = {
  rejected: 'max_connections',
  rejected_per_ip: 'per_ip',
  protected_mode_rejections: 'protected_mode',
  proxy_rejections: 'proxy_header',
  accept_errors: 'accept_error',
  cross_protocol_rejections: 'cross_protocol',
};
/** Shown elsewhere (their own families) or gauges. */
const NOT_EVENTS = new Set<CounterName>([
  'connections',
  'commands',
  'tls_handshakes_in_progress',
  'tls_handshakes',
  'tls_handshake_failures',
  'tls_handshake_timeouts',
  'reloads',
  'reload_failures',
  'autoscale_grows',
  'autoscale_shrinks',
  'trace_spans_exported',
  'trace_spans_dropped',
  'trace_spans_failed',
]);

interface Scrape {
  stats: StatsSnapshot;
  metrics: MetricsSnapshot;
}

/**
 * A metric family whose values are all computed at scrape time. prom-client's own classes keep
 * their values between scrapes, which this has no use for: it hands the registry what it formats.
 */
function family(
  registry: client.Registry,
  name: string,
  help: string,
  type: 'counter' | 'gauge' | 'histogram',
  values: () => { labels?: Record<string, string>; value: number; metricName?: string }[],
): void {
  // An OpenMetrics registry renames a counter (drops "_total") before it asks for the values.
  const metric = {
    name,
    help,
    type,
    aggregator: 'sum',
    get: async () => ({ name: metric.name, help, type, values: values(), aggregator: 'sum' }),
    reset: () => {},
  };
  registry.registerMetric(metric as unknown as client.Metric);
}

export class MetricsExporter {
  private readonly supervisor: Supervisor;
  private scrape: Scrape | null = null;
  private readonly registries: Record<'prometheus' | 'openmetrics', client.Registry>;

  constructor(supervisor: Supervisor) {
    this.supervisor = supervisor;
    this.registries = {
      prometheus: this.build(client.Registry.PROMETHEUS_CONTENT_TYPE),
      openmetrics: this.build(client.Registry.OPENMETRICS_CONTENT_TYPE),
    };
  }

  /** The exposition and its content type: OpenMetrics when `accept` asks for it. */
  async render(accept: string): Promise<{ body: string; contentType: string }> {
    const kind = accept.includes('application/openmetrics-text') ? 'openmetrics' : 'prometheus';
    const registry = this.registries[kind];
    const sup = this.supervisor;
    this.scrape = { stats: sup.stats.snapshot(), metrics: sup.metrics!.snapshot() };
    try {
      return { body: await registry.metrics(), contentType: registry.contentType };
    } finally {
      this.scrape = null;
    }
  }

  private build(contentType: string): client.Registry {
    const r = new client.Registry();
    r.setContentType(contentType as typeof client.Registry.PROMETHEUS_CONTENT_TYPE);
    // Process metrics of the one process (CPU, memory, descriptors, the supervisor's event loop).
    client.collectDefaultMetrics({ register: r, prefix: 'tcpool_' });
    // Gauges that prom-client names "_total", which promtool (rightly) refuses for a gauge.
    for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total'])
      r.removeSingleMetric(`tcpool_nodejs_${name}`);
    const s = (): StatsSnapshot => this.scrape!.stats;
    const m = (): MetricsSnapshot => this.scrape!.metrics;
    const sup = this.supervisor;
    const serving = (): number[] => s().workers.flatMap((w, i) => (w.state === 0 ? [] : [i]));
    const perWorker = (f: (i: number) => number) => () =>
      serving().map((i) => ({ labels: { worker: String(i) }, value: f(i) }));

    family(r, 'tcpool_up', '1 while the server runs; see tcpool_ready', 'gauge', () => [
      { value: 1 },
    ]);
    family(
      r,
      'tcpool_ready',
      '1 when /readyz says ready (not starting, draining or stopping)',
      'gauge',
      () => [{ value: sup.phase === 'serving' ? 1 : 0 }],
    );
    family(
      r,
      'tcpool_pool_size',
      'Worker threads serving (THREAD_POOL_SIZE, live)',
      'gauge',
      () => [{ value: s().poolSize }],
    );
    family(
      r,
      'tcpool_pool_max',
      'Most worker threads the pool can grow to (THREAD_POOL_MAX)',
      'gauge',
      () => [{ value: sup.capacity }],
    );
    family(
      r,
      'tcpool_pool_autoscale_total',
      'Pool changes by POOL_AUTOSCALE, by direction',
      'counter',
      () => [
        { labels: { direction: 'up' }, value: s().totals.autoscale_grows },
        { labels: { direction: 'down' }, value: s().totals.autoscale_shrinks },
      ],
    );
    family(
      r,
      'tcpool_trace_spans_total',
      'Spans (TRACING) by outcome: exported, dropped (queue full), failed (export failed)',
      'counter',
      () => [
        { labels: { outcome: 'exported' }, value: s().totals.trace_spans_exported },
        { labels: { outcome: 'dropped' }, value: s().totals.trace_spans_dropped },
        { labels: { outcome: 'failed' }, value: s().totals.trace_spans_failed },
      ],
    );
    family(r, 'tcpool_connections_active', 'Clients connected now, all workers', 'gauge', () => [
      { value: s().active },
    ]);
    family(r, 'tcpool_connections_accepted_total', 'Connections accepted', 'counter', () => [
      { value: s().connections },
    ]);
    family(
      r,
      'tcpool_connections_rejected_total',
      'Connections refused, by reason',
      'counter',
      () =>
        Object.entries(REJECTIONS).map(([c, reason]) => ({
          labels: { reason },
          value: s().totals[c as CounterName],
        })),
    );
    family(r, 'tcpool_commands_total', 'Commands run, by command and protocol', 'counter', () =>
      m()
        .commands.flatMap((c) => [
          { labels: { command: c.name, protocol: 'line' }, value: c.line },
          { labels: { command: c.name, protocol: 'resp' }, value: c.resp },
        ])
        .filter((v) => v.value > 0 || v.labels.command !== 'unknown'),
    );
    family(
      r,
      'tcpool_command_errors_total',
      'Error replies, by error code (src/errors.ts)',
      'counter',
      () => Object.entries(m().errors).map(([code, value]) => ({ labels: { code }, value })),
    );
    family(
      r,
      'tcpool_command_duration_seconds',
      'Time a worker spent on a command (a pipelined batch shares its time evenly)',
      'histogram',
      () =>
        m().commands.flatMap((c) => {
          let cumulative = 0;
          const rows = c.buckets.map((n, b) => {
            cumulative += n;
            const le = b < LATENCY_BUCKETS.length ? String(LATENCY_BUCKETS[b]) : '+Inf';
            return {
              metricName: 'tcpool_command_duration_seconds_bucket',
              labels: { command: c.name, le },
              value: cumulative,
            };
          });
          return [
            ...rows,
            {
              metricName: 'tcpool_command_duration_seconds_sum',
              labels: { command: c.name },
              value: c.sumSeconds,
            },
            {
              metricName: 'tcpool_command_duration_seconds_count',
              labels: { command: c.name },
              value: c.count,
            },
          ];
        }),
    );
    family(r, 'tcpool_received_bytes_total', 'Bytes received from clients', 'counter', () => [
      { value: m().bytesIn },
    ]);
    family(r, 'tcpool_sent_bytes_total', 'Reply bytes handed to client sockets', 'counter', () => [
      { value: m().bytesOut },
    ]);
    family(
      r,
      'tcpool_worker_clients',
      'Clients connected to each worker',
      'gauge',
      perWorker((i) => s().workers[i].active),
    );
    family(
      r,
      'tcpool_worker_commands_total',
      'Commands run by each worker',
      'counter',
      perWorker((i) => s().workers[i].commands),
    );
    family(
      r,
      'tcpool_worker_event_loop_utilization',
      "Share of the last second each worker's event loop was busy",
      'gauge',
      perWorker((i) => m().workers[i].elu),
    );
    family(
      r,
      'tcpool_worker_event_loop_lag_seconds',
      "Each worker's event-loop delay over the last second: p99",
      'gauge',
      perWorker((i) => m().workers[i].lagP99),
    );
    family(
      r,
      'tcpool_worker_event_loop_lag_max_seconds',
      "Each worker's largest event-loop delay over the last second",
      'gauge',
      perWorker((i) => m().workers[i].lagMax),
    );
    family(
      r,
      'tcpool_worker_heap_used_bytes',
      "Each worker's V8 heap in use",
      'gauge',
      perWorker((i) => m().workers[i].heapUsed),
    );
    family(
      r,
      'tcpool_worker_restarts_total',
      'Workers that died and were replaced',
      'counter',
      () => [{ value: s().restarts }],
    );
    family(r, 'tcpool_tls_handshakes_total', 'TLS handshakes, by result', 'counter', () => [
      { labels: { result: 'ok' }, value: s().totals.tls_handshakes },
      { labels: { result: 'failed' }, value: s().totals.tls_handshake_failures },
      { labels: { result: 'timeout' }, value: s().totals.tls_handshake_timeouts },
    ]);
    family(r, 'tcpool_tls_handshakes_in_progress', 'TLS handshakes under way', 'gauge', () => [
      { value: s().totals.tls_handshakes_in_progress },
    ]);
    family(r, 'tcpool_reloads_total', 'Configuration reloads that took effect', 'counter', () => [
      { value: s().totals.reloads },
    ]);
    family(
      r,
      'tcpool_reload_failures_total',
      'Reloads refused (invalid configuration; nothing changed)',
      'counter',
      () => [{ value: s().totals.reload_failures }],
    );
    // Every other event counter (the security ones, log drops), under its STATS FULL name.
    for (const c of COUNTERS) {
      if (NOT_EVENTS.has(c) || c in REJECTIONS) continue;
      family(r, `tcpool_${c}_total`, `STATS FULL's ${c}`, 'counter', () => [
        { value: s().totals[c] },
      ]);
    }
    return r;
  }
}
