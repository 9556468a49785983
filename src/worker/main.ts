// Worker thread entry: its own registry, listener and event loop; it reports to the supervisor.
import { parentPort, workerData } from 'node:worker_threads';
import { createRegistry } from '../commands/load.ts';
import { batchingSink, Logger } from '../log/logger.ts';
import { SharedStats } from '../stats/counters.ts';
import type { FromWorker, ToWorker, WorkerData } from '../supervisor/messages.ts';
import { WorkerServer } from './server.ts';

const data = workerData as WorkerData;
const port = parentPort!;
const post = (msg: FromWorker): void => port.postMessage(msg);

const { config, workerId } = data;
const stats = new SharedStats(data.statsBuffer, config.THREAD_POOL_SIZE);
const logs = batchingSink((text) => post({ type: 'log', text }));
const logger = new Logger(config.LOG_LEVEL, config.LOG_FORMAT, logs.sink, workerId);

try {
  const registry = await createRegistry(config.COMMANDS_MODULE);
  const server = new WorkerServer(config, workerId, registry, stats, logger);
  await server.listen(config.HOST, data.port);
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'shutdown') {
      const drained = server.shutdown(msg.timeoutMs);
      post({ type: 'stopped-accepting' });
      void drained.then(() => {
        logs.flush();
        post({ type: 'drained' });
      });
    }
  });
  post({ type: 'ready' });
} catch (err) {
  logs.flush();
  post({ type: 'fatal', message: (err as Error).message });
}
