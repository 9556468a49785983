// accept-alloc.ts — what a worker allocates for each accepted idle connection, garbage included,
// by allocation site: V8's sampling heap profiler in worker 0 (through the inspector's
// NodeWorker domain), keeping the objects scavenges and mark-compacts collected, while N idle
// connections arrive after a warm-up of 500. benchmarks/idle-heap.ts says what stays alive.
//
// usage: node benchmarks/accept-alloc.ts [N]   (default 5000; env as for `tcpool serve`, e.g.
//        LOG_LEVEL=WARN; THREAD_POOL_SIZE is forced to 1 so every connection lands in it)
import { Session } from 'node:inspector/promises';
import { loadConfig } from '../src/config/load.ts';
import { Logger } from '../src/log/logger.ts';
import { SharedStats } from '../src/stats/counters.ts';
import { Supervisor } from '../src/supervisor/supervisor.ts';
import { connectIdle } from './idle-clients.ts';

const N = Number(process.argv[2] ?? 5000);
process.env.THREAD_POOL_SIZE = '1';
process.env.PORT ??= '0';
process.env.ADMIN_PORT = 'off';
const { config } = loadConfig({});
const stats = SharedStats.create(Math.max(config.THREAD_POOL_MAX, config.THREAD_POOL_SIZE), 0);
const discard = (): void => {};
const logger = new Logger(config.LOG_LEVEL, config.LOG_FORMAT, discard);

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}
type Reply = { id: number; result: { profile: { head: ProfileNode } } };

// The worker is reached through the main thread's inspector session.
const session = new Session();
session.connect();
let workerSession = '';
const waiting = new Map<number, (reply: Reply) => void>();
let lastId = 0;
session.on('NodeWorker.attachedToWorker', (m) => {
  workerSession = (m.params as { sessionId: string }).sessionId;
});
session.on('NodeWorker.receivedMessageFromWorker', (m) => {
  const reply = JSON.parse((m.params as { message: string }).message) as Reply;
  waiting.get(reply.id)?.(reply);
  waiting.delete(reply.id);
});
await session.post('NodeWorker.enable', { waitForDebuggerOnStart: false });
const supervisor = new Supervisor(config, logger, discard, null, stats);
await supervisor.start();
for (let i = 0; i < 50 && workerSession === ''; i++) await new Promise((r) => setTimeout(r, 100));
function call(method: string, params: object = {}): Promise<Reply> {
  const id = ++lastId;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    void session.post('NodeWorker.sendMessageToWorker', {
      sessionId: workerSession,
      message: JSON.stringify({ id, method, params }),
    });
  });
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// The first connections show the handle path what it needs; then they go.
for (const s of await connectIdle(supervisor.port, 500)) s.destroy();
await pause(1000);
await call('HeapProfiler.enable');
await call('HeapProfiler.startSampling', {
  samplingInterval: 128,
  includeObjectsCollectedByMinorGC: true,
  includeObjectsCollectedByMajorGC: true,
});
const base = stats.activeClients();
const sockets = await connectIdle(supervisor.port, N);
for (let i = 0; i < 100 && stats.activeClients() < base + N; i++) await pause(100);
await pause(1000);
const { profile } = (await call('HeapProfiler.stopSampling')).result;

const bySite = new Map<string, number>();
let total = 0;
(function walk(node: ProfileNode): void {
  const f = node.callFrame;
  const site = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
  total += node.selfSize;
  if (node.selfSize > 0) bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
  for (const child of node.children) walk(child);
})(profile.head);
const served = stats.activeClients() - base;
console.log(`${served} connections; allocated per connection: ${(total / N).toFixed(0)} B`);
console.log('| bytes | where |\n| ----: | ----- |');
for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 20))
  console.log(`| ${(bytes / N).toFixed(0)} | ${site} |`);
for (const socket of sockets) socket.destroy();
await supervisor.shutdown();
process.exit(served === N ? 0 : 1);
