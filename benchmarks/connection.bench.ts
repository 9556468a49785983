// npm run bench:micro -- the request loop itself: a Connection fed pipelined requests through a
// channel that swallows its writes, so the cost of decode → executor → encode → batch is measured
// without sockets or the kernel (what compare.sh's figures are made of, minus the network).
import { builtins } from '../src/commands/builtin/index.ts';
import { Registry } from '../src/commands/registry.ts';
import { loadConfig } from '../src/config/load.ts';
import { Logger } from '../src/log/logger.ts';
import { LogThrottle } from '../src/log/throttle.ts';
import { Output } from '../src/protocol/output.ts';
import { encodeRespRequest } from '../src/protocol/resp.ts';
import { SharedStats } from '../src/stats/counters.ts';
import { MetricsLayout, WorkerMetrics } from '../src/stats/metrics.ts';
import { Connection } from '../src/worker/connection.ts';
import { bench } from './harness.ts';

// BENCH_TRACING=0.01: the same loop with tracing on, 1% of root spans sampled (the exporter's
// endpoint is unreachable on purpose: what is measured is the cost per command, not the export).
if (process.env.BENCH_TRACING !== undefined) {
  process.env.OTEL_TRACES_SAMPLER = 'traceidratio';
  process.env.OTEL_TRACES_SAMPLER_ARG = process.env.BENCH_TRACING;
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT ??= 'http://127.0.0.1:9';
  const { startTracing } = await import('../src/tracing/tracing.ts');
  await startTracing('bench', 0, new Logger('ERROR', 'text', () => {}, 0));
}

const N = 10_000;
const registry = new Registry();
for (const spec of builtins) registry.register(spec);
const config = loadConfig({ env: {} }).config;
const logger = new Logger('ERROR', 'text', () => {}, 0);
const stats = SharedStats.create(1);
const specs = registry.list();
const layout = new MetricsLayout(
  specs.map((s) => s.name),
  1,
);
const metrics = new WorkerMetrics(layout.createBuffer(), layout, 0, specs);
let written = 0;
const channel = {
  write(data: string | Buffer, cb?: () => void) {
    written += data.length;
    cb?.();
    return true;
  },
  cork() {},
  uncork() {},
  writableLength: 0,
  readableLength: 0,
  pause() {},
  resume() {},
  end() {},
  destroy() {},
  on() {},
  localAddress: '127.0.0.1',
  localPort: 1,
};
const requests = {
  maxLine: 65536,
  maxBulk: 1 << 24,
  maxArgs: 1 << 20,
  maxRequest: 1 << 26,
};
const owner = {
  registry,
  stats,
  metrics,
  logger,
  throttle: new LogThrottle(logger),
  server: { config, port: 1, startedAt: Date.now(), version: 'bench' },
  workerId: 0,
  access: { rateLimited: false },
  // Both shapes of the limits, so this file also runs against the tree before the executor split.
  limits: {
    requests,
    maxLineBytes: 65536,
    resp: requests,
    outputHighWater: 1 << 30,
    outputLimit: 0,
  },
  draining: false,
  output: new Output(),
  count() {},
  spoke() {},
  connectionClosed() {},
  listClients: async () => [],
};
const admitted = { ip: '127.0.0.1', peer: '127.0.0.1:2', ipEntry: -1, released: false };

function connection(): Connection {
  // biome-ignore lint/suspicious/noExplicitAny: a stand-in owner and channel, duck-typed
  return new Connection(channel as any, owner as any, {
    admitted,
    authenticated: true,
    refuseProxyHeader: false,
    transport: 'tcp',
  });
}

const linePings = Buffer.from('PING\r\n'.repeat(N));
const lineEchoes = Buffer.from('ECHO hello world\n'.repeat(N));
const respPings = Buffer.concat(Array(N).fill(encodeRespRequest(['PING'])));
const respEchoes = Buffer.concat(Array(N).fill(encodeRespRequest(['ECHO', 'x'.repeat(100)])));

const only = process.argv[2];
for (const [name, input] of [
  ['connection: 10k pipelined line PINGs (per request)', linePings],
  ['connection: 10k pipelined line ECHOs (per request)', lineEchoes],
  ['connection: 10k pipelined RESP PINGs (per request)', respPings],
  ['connection: 10k pipelined RESP ECHO 100 B (per request)', respEchoes],
] as const) {
  if (only === undefined || name.includes(only)) bench(name, N, () => connection().onData(input));
}
if (written === 0) throw new Error('nothing was written');
