// npm run bench:pubsub -- [--subscribers 1000] [--channels 4] [--messages 20000] [--payload 64]
//                          [--threads 4] [--pipeline 500] [--server-threads 2] [--no-redis]
//                          [--json]
// Pub/sub fan-out, tcpool and Redis side by side in one run: it starts a tcpool server and, when
// installed, a redis-server, and runs the very measurement `tcpool bench --pubsub` runs
// (src/bench/pubsub.ts) against each. This script only starts the servers; to measure a server
// that is already running, use `tcpool bench --pubsub --port N`.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { type PubSubResult, runPubSubBench } from '../src/bench/pubsub.ts';
import { startTestServer } from '../src/testing/index.ts';

const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '1000' },
    channels: { type: 'string', default: '4' },
    messages: { type: 'string', default: '20000' },
    payload: { type: 'string', default: '64' },
    threads: { type: 'string', default: '4' },
    pipeline: { type: 'string', default: '500' },
    'server-threads': { type: 'string', default: '2' },
    'no-redis': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const options = (port: number) => ({
  host: '127.0.0.1',
  port,
  subscribers: Number(values.subscribers),
  channels: Number(values.channels),
  messages: Number(values.messages),
  payload: Number(values.payload),
  pipeline: Number(values.pipeline),
  threads: Number(values.threads),
  stallMs: 10_000,
});

const results: { server: string; result: PubSubResult }[] = [];
const tcpool = await startTestServer({
  threads: Number(values['server-threads']),
  env: { MAX_CONNECTIONS: '100000' },
});
try {
  const server = `tcpool (${values['server-threads']} workers)`;
  results.push({ server, result: await runPubSubBench(options(tcpool.port)) });
} finally {
  await tcpool.stop();
}

const haveRedis = spawnSync('sh', ['-c', 'command -v redis-server']).status === 0;
if (!values['no-redis'] && haveRedis) {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  const redis: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  try {
    await listening(port);
    results.push({ server: 'redis-server', result: await runPubSubBench(options(port)) });
  } finally {
    redis.kill('SIGKILL');
  }
}

if (values.json) process.stdout.write(`${JSON.stringify(results)}\n`);
else {
  const o = options(0);
  process.stdout.write(
    `${o.subscribers} subscribers on ${o.channels} channels, ${o.messages} messages of ${o.payload} bytes\n`,
  );
  for (const { server, result: r } of results)
    process.stdout.write(
      `${server.padEnd(22)} ${String(Math.round(r.deliveredPerSecond)).padStart(10)} messages/s delivered (${r.delivered} of ${r.expected} in ${r.elapsedSeconds.toFixed(3)} s)${r.ok ? '' : `  PROBLEMS: ${r.problems.join('; ')}`}\n`,
    );
}
if (results.some((r) => !r.result.ok)) process.exitCode = 1;

/** Until something accepts on the port (redis-server takes a moment to start), at most 5 s. */
async function listening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = createConnection({ port, host: '127.0.0.1' });
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server did not listen on ${port}`);
}
