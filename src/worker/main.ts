// Worker thread entry: its own registry, listener and event loop; it reports to the supervisor.
import { parentPort, workerData } from 'node:worker_threads';
import type { ClientInfo } from '../commands/context.ts';
import { loadCommands } from '../commands/load.ts';
import { startHub } from '../pubsub/hub.ts';
import { batchingSink, Logger } from '../log/logger.ts';
import { SharedStats } from '../stats/counters.ts';
import { startTracing } from '../tracing/tracing.ts';
import type { FromWorker, QueryKind, ToWorker, WorkerData } from '../supervisor/messages.ts';
import { WorkerServer } from './server.ts';

const data = workerData as WorkerData;
const port = parentPort!;
const post = (msg: FromWorker): void => port.postMessage(msg);

const { config, workerId } = data;
const stats = new SharedStats(data.statsBuffer, config.THREAD_POOL_SIZE);
const logs = batchingSink((text) => post({ type: 'log', text }));
const logger = new Logger(config.LOG_LEVEL, config.LOG_FORMAT, logs.sink, workerId);

/** Questions this worker asked the others, by id. */
const pending = new Map<number, (results: unknown[]) => void>();
let lastQueryId = 0;

try {
  const stopTracing = config.TRACING ? await startTracing(data.version, workerId) : null;
  const hub = startHub({
    workerId,
    workers: config.THREAD_POOL_SIZE,
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
  const server = new WorkerServer({
    server: { config, port: data.port, startedAt: data.startedAt, version: data.version },
    workerId,
    registry,
    stats,
    logger,
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
  port.on('message', (msg: ToWorker) => {
    switch (msg.type) {
      case 'shutdown': {
        // The module's teardown runs once the clients are gone, within what is left of the budget.
        const deadline = Date.now() + msg.timeoutMs;
        const drained = server
          .shutdown(msg.timeoutMs)
          .then(() =>
            commands.teardown(Math.max(500, deadline - Date.now()), (m) => logger.warn(m)),
          );
        post({ type: 'stopped-accepting' });
        void drained.then(async () => {
          hub.close();
          // The last spans leave before the worker does.
          await stopTracing?.().catch((err: Error) => logger.warn(`Tracing: ${err.message}`));
          logs.flush();
          post({ type: 'drained' });
          // Ending the thread itself (not terminate() from the supervisor) runs its exit hooks,
          // among them writing V8 coverage when NODE_V8_COVERAGE is set.
          process.exit(0);
        });
        break;
      }
      case 'query':
        post({ type: 'query-reply', id: msg.id, result: answers[msg.kind]() });
        break;
      case 'query-result':
        pending.get(msg.id)?.(msg.results);
        pending.delete(msg.id);
        break;
    }
  });
  post({ type: 'ready' });
} catch (err) {
  logs.flush();
  post({ type: 'fatal', message: (err as Error).message });
}
