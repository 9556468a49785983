// Worker thread entry: its own registry, listener and event loop; it reports to the supervisor.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import type { ClientInfo } from '../commands/context.ts';
import { loadCommands } from '../commands/load.ts';
import { startHub } from '../pubsub/hub.ts';
import { batchingSink, Logger } from '../log/logger.ts';
import { SharedStats } from '../stats/counters.ts';
import type { ExportBatch } from '../tracing/span-queue.ts';
import { startTracing } from '../tracing/tracing.ts';
import { MetricsLayout, WorkerMetrics } from '../stats/metrics.ts';
import type { FromWorker, QueryKind, ToWorker, WorkerData } from '../supervisor/messages.ts';
import { WorkerServer } from './server.ts';

const data = workerData as WorkerData;
const port = parentPort!;
const post = (msg: FromWorker): void => port.postMessage(msg);

const { config, workerId } = data;
const stats = new SharedStats(data.statsBuffer, data.capacity);
const logs = batchingSink((text) => post({ type: 'log', text }));
const logger = new Logger(config.LOG_LEVEL, config.LOG_FORMAT, logs.sink, workerId);

/** Questions this worker asked the others, by id. */
const pending = new Map<number, (results: unknown[]) => void>();
let lastQueryId = 0;

/** Span batches out at the supervisor's exporter (TRACING), by id: what to call with the outcome. */
const exporting = new Map<number, (ok: boolean, error?: Error, memory?: ArrayBuffer) => void>();
let lastExportId = 0;

/** Hands a batch to the supervisor, which exports it: its memory moves there, uncopied. */
const sendSpans: ExportBatch = (body, spans, done) => {
  const id = ++lastExportId;
  const whole = body.byteOffset === 0 && body.buffer instanceof ArrayBuffer;
  const memory = whole ? (body.buffer as ArrayBuffer) : new Uint8Array(body).buffer;
  port.postMessage(
    { type: 'spans', id, body: memory, length: body.length, spans } satisfies FromWorker,
    [memory],
  );
  exporting.set(id, done);
};

/** Event-loop delay, utilisation and heap, into this worker's metrics row once a second. */
function startSampling(metrics: WorkerMetrics): NodeJS.Timeout {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let elu = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const used = performance.eventLoopUtilization(now, elu).utilization;
    elu = now;
    // The histogram is in nanoseconds, and counts the resolution itself as delay.
    const lag = (ns: number): number => Math.max(0, ns / 1e9 - 0.01);
    metrics.sample(used, lag(delay.mean || 0), lag(delay.percentile(99)), lag(delay.max));
    delay.reset();
  }, 1000);
  timer.unref();
  return timer;
}

try {
  const stopTracing = config.TRACING
    ? await startTracing(data.version, workerId, logger, sendSpans, (outcome, n) =>
        stats.count(workerId, `trace_spans_${outcome}`, n),
      )
    : null;
  const hub = startHub({
    workerId,
    // Read live: a resize changes it (src/supervisor), and a grown pool must hear every message.
    workers: () => stats.poolSize(),
    outputLimit: config.PUBSUB_OUTPUT_LIMIT_BYTES,
  });
  const commands = await loadCommands(config.COMMANDS_MODULE, config.COMMAND_TIMEOUT_MS);
  const registry = commands.registry;
  // The module's per-worker setup runs before this worker accepts anyone.
  await commands.setup({
    id: workerId,
    config,
    log: {
      debug: (m) => logger.debug(m),
      info: (m) => logger.info(m),
      warn: (m) => logger.warn(m),
      error: (m) => logger.error(m),
    },
  });
  if (workerId === 0 && config.COMMANDS_MODULE !== '')
    logger.info(
      `Commands module ${config.COMMANDS_MODULE} loaded: ${commands.commands.map((c) => c.name).join(', ') || 'no commands'}`,
    );
  const specs = registry.list();
  const layout = new MetricsLayout(
    specs.map((s) => s.name),
    data.capacity,
  );
  const metrics = new WorkerMetrics(data.metricsBuffer, layout, workerId, specs);
  const server = new WorkerServer({
    server: { config, port: data.port, startedAt: data.startedAt, version: data.version },
    workerId,
    registry,
    stats,
    logger,
    metrics,
    ipTableBuffer: data.ipTableBuffer,
    gatherClients: () =>
      new Promise((resolve) => {
        const id = ++lastQueryId;
        pending.set(id, (results) =>
          resolve((results as ClientInfo[][]).flat().sort((a, b) => a.id - b.id)),
        );
        post({ type: 'query', id, kind: 'clients' });
      }),
  });
  /** What this worker answers for each kind of query the others ask. */
  const answers: Record<QueryKind, () => unknown> = {
    clients: () => server.localClients(),
  };
  await server.start(data.ports, data.tls);
  const sampling = startSampling(metrics);
  /** The thread's last steps: its lines out, the supervisor told, then the thread ends. */
  let ending = false;
  const finish = (drained: Promise<void>, budgetMs: number): void => {
    ending = true;
    post({ type: 'stopped-accepting' });
    // The module's teardown runs once the clients are gone, within what is left of the budget.
    const deadline = Date.now() + budgetMs;
    const tornDown = drained.then(() =>
      commands.teardown(Math.max(500, deadline - Date.now()), (m) => logger.warn(m)),
    );
    void tornDown.then(async () => {
      clearInterval(sampling);
      hub.close();
      // The last spans leave before the worker does.
      await stopTracing?.(Math.max(100, deadline - Date.now())).catch((err: Error) =>
        logger.warn(`Tracing: ${err.message}`),
      );
      logs.flush();
      post({ type: 'drained' });
      // Ending the thread itself (not terminate() from the supervisor) runs its exit hooks,
      // among them writing V8 coverage when NODE_V8_COVERAGE is set.
      process.exit(0);
    });
  };
  port.on('message', (msg: ToWorker) => {
    switch (msg.type) {
      case 'shutdown':
        // A retiring worker is already on its way out: it stops waiting for its clients.
        if (ending) server.endRetirement();
        else finish(server.shutdown(msg.timeoutMs), msg.timeoutMs);
        break;
      case 'retire':
        finish(server.retire(msg.drainMs, msg.shutdownMs), msg.drainMs + msg.shutdownMs);
        break;
      case 'stop-accepting':
        server.stopAccepting();
        post({ type: 'stopped-accepting' });
        break;
      case 'reconfigure':
        server.reconfigure(msg.config, msg.tls, msg.ipTableBuffer);
        post({ type: 'reconfigured', id: msg.id });
        break;
      case 'kill-client':
        post({ type: 'killed-client', id: msg.id, found: server.killClient(msg.clientId) });
        break;
      case 'query':
        post({ type: 'query-reply', id: msg.id, result: answers[msg.kind]() });
        break;
      case 'query-result':
        pending.get(msg.id)?.(msg.results);
        pending.delete(msg.id);
        break;
      case 'spans-done':
        exporting.get(msg.id)?.(
          msg.ok,
          msg.error === undefined ? undefined : new Error(msg.error),
          msg.body,
        );
        exporting.delete(msg.id);
        break;
    }
  });
  post({ type: 'ready' });
} catch (err) {
  logs.flush();
  post({ type: 'fatal', message: (err as Error).message });
}
