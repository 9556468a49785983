// idle-heap.ts — what one idle connection keeps alive in a worker, by object kind: a heap
// snapshot of worker 0 (Worker#getHeapSnapshot, after a full GC) before and after N idle
// connections, the difference divided by N. RSS per connection (compare.sh, benchmarks/idle.sh)
// adds what a snapshot cannot see: young-generation garbage not yet collected, heap growth steps,
// malloc'd memory outside V8.
//
// usage: node benchmarks/idle-heap.ts [N]   (default 5000; env as for `tcpool serve`, e.g.
//        TCP_READ_PATH=stream; THREAD_POOL_SIZE is forced to 1 so every connection lands in it)
import type { Worker } from 'node:worker_threads';
import { loadConfig } from '../src/config/load.ts';
import { Logger } from '../src/log/logger.ts';
import { SharedStats } from '../src/stats/counters.ts';
import { Supervisor } from '../src/supervisor/supervisor.ts';
import { connectIdle } from './idle-clients.ts';

const N = Number(process.argv[2] ?? 5000);
process.env.THREAD_POOL_SIZE = '1';
process.env.PORT ??= '0';
process.env.ADMIN_PORT = 'off';
process.env.LOG_LEVEL ??= 'ERROR';
const { config } = loadConfig({});
const stats = SharedStats.create(Math.max(config.THREAD_POOL_MAX, config.THREAD_POOL_SIZE), 0);
const write = (text: string): void => void process.stderr.write(text);
const logger = new Logger('ERROR', config.LOG_FORMAT, write);
const supervisor = new Supervisor(config, logger, write, null, stats);
await supervisor.start();
// The supervisor keeps its workers private; a benchmark may look.
const worker = (supervisor as unknown as { slots: { worker: Worker }[] }).slots[0].worker;

type Tally = Map<string, { count: number; bytes: number }>;
async function snapshot(): Promise<Tally> {
  let text = '';
  for await (const chunk of await worker.getHeapSnapshot()) text += chunk;
  const snap = JSON.parse(text);
  const fields: string[] = snap.snapshot.meta.node_fields;
  const types: string[] = snap.snapshot.meta.node_types[0];
  const [type, name, size] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const tally: Tally = new Map();
  const nodes: number[] = snap.nodes;
  for (let i = 0; i < nodes.length; i += fields.length) {
    const t = types[nodes[i + type]];
    const label = ['object', 'closure', 'native', 'hidden'].includes(t)
      ? `${t} ${String(snap.strings[nodes[i + name]]).slice(0, 50)}`
      : t;
    const e = tally.get(label) ?? { count: 0, bytes: 0 };
    e.count += 1;
    e.bytes += nodes[i + size];
    tally.set(label, e);
  }
  return tally;
}

const before = await snapshot();
const sockets = await connectIdle(supervisor.port, N);
for (let i = 0; i < 100 && stats.activeClients() < N; i++)
  await new Promise((r) => setTimeout(r, 100));
const served = stats.activeClients();
const after = await snapshot();
let total = 0;
const rows: [string, number, number][] = [];
for (const [label, a] of after) {
  const b = before.get(label) ?? { count: 0, bytes: 0 };
  total += a.bytes - b.bytes;
  if (Math.abs(a.bytes - b.bytes) / N >= 8)
    rows.push([label, (a.count - b.count) / N, (a.bytes - b.bytes) / N]);
}
rows.sort((x, y) => y[2] - x[2]);
console.log(
  `${served} idle connections in worker 0 (TCP_READ_PATH=${config.TCP_READ_PATH}); per connection:`,
);
console.log('| bytes | objects | kind |\n| ----: | ------: | ---- |');
for (const [label, count, bytes] of rows)
  console.log(`| ${bytes.toFixed(0)} | ${count.toFixed(2)} | ${label} |`);
console.log(`| **${(total / N).toFixed(0)}** | | total (the rows above and smaller ones) |`);
for (const socket of sockets) socket.destroy();
await supervisor.shutdown();
process.exit(served === N ? 0 : 1);
