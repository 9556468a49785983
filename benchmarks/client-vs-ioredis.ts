// npm run bench:client -- [--seconds 5] [--concurrency 256] [--pool 8] [--threads 2] [--json]
// tcpool/client against ioredis on the same tcpool server in the same run: requests per second
// and this process's CPU time per request, for ECHO calls kept `concurrency` in flight.
// ioredis gets the same number of connections (one Redis instance per pool slot, used in turn)
// and its auto-pipelining, so both pipeline over the same sockets count.
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { createClient } from '../src/client/index.ts';
import { startTestServer } from '../src/testing/index.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '256' },
    pool: { type: 'string', default: '8' },
    threads: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const pool = Number(values.pool);

interface Result {
  client: string;
  requests: number;
  rps: number;
  cpuMicrosPerRequest: number;
  cpuPercent: number;
}

/** Keeps `concurrency` calls in flight for `seconds`; counts the replies. */
async function drive(name: string, call: (i: number) => Promise<unknown>): Promise<Result> {
  // A short warm-up, so JIT and connection set-up are not measured.
  await Promise.all(Array.from({ length: 2000 }, (_, i) => call(i)));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let requests = 0;
  const lane = async (lane: number) => {
    for (let i = lane; performance.now() < end; i += concurrency) {
      await call(i);
      requests++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => lane(i)));
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuMicros = cpu.user + cpu.system;
  return {
    client: name,
    requests,
    rps: Math.round(requests / wall),
    cpuMicrosPerRequest: Number((cpuMicros / requests).toFixed(2)),
    cpuPercent: Math.round((cpuMicros / 1e6 / wall) * 100),
  };
}

const server = await startTestServer({ threads: Number(values.threads) });
try {
  const tcpool = createClient({ port: server.port, size: pool });
  await tcpool.ready();
  const ours = await drive('tcpool/client', (i) => tcpool.call('ECHO', `m${i}`));
  await tcpool.close();

  const redis = Array.from(
    { length: pool },
    () =>
      new Redis({
        port: server.port,
        host: '127.0.0.1',
        enableAutoPipelining: true,
        lazyConnect: true,
      }),
  );
  await Promise.all(redis.map((r) => r.connect()));
  const theirs = await drive('ioredis', (i) => redis[i % pool].echo(`m${i}`));
  for (const r of redis) r.disconnect();

  const results = [ours, theirs];
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ seconds, concurrency, pool, results })}\n`);
  } else {
    process.stdout.write(
      `ECHO, ${concurrency} in flight, ${pool} connections, ${seconds} s each\n`,
    );
    for (const r of results)
      process.stdout.write(
        `${r.client.padEnd(14)} ${String(r.rps).padStart(9)} req/s  ${String(r.cpuMicrosPerRequest).padStart(6)} µs CPU/req  ${String(r.cpuPercent).padStart(4)}% CPU\n`,
      );
  }
} finally {
  await server.stop();
}
