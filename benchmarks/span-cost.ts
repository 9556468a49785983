// npm run bench:spans -- [SPANS] — what one sampled span costs the thread that serves the
// command: SPANS spans (default 1,000,000) through src/tracing's real path (endCommandSpan, the
// batch queue, the OTLP/HTTP exporter) to a sink in another process (it answers 200 and counts
// what it received), with the event loop turned every 200 spans so the exports go out as they
// would between reads. Prints this process's CPU time per span, before and after the last
// export. The sink's own CPU is not counted (a collector runs elsewhere).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { CommandSpec } from '../src/commands/registry.ts';
import { Logger } from '../src/log/logger.ts';

const SPANS = Number(process.argv[2] ?? 1_000_000);
const sink = spawn(
  process.execPath,
  [
    '-e',
    `let posts = 0, bytes = 0;
     const server = require('node:http').createServer((req, res) => {
       req.on('data', (d) => (bytes += d.length));
       req.on('end', () => { posts++; res.writeHead(200, { 'content-type': req.headers['content-type'] }).end(); });
     }).listen(0, '127.0.0.1', () => console.log(server.address().port));
     process.on('SIGTERM', () => { console.log(posts + ' ' + bytes); process.exit(0); });`,
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
sink.stdout.setEncoding('utf8');
const [port] = (await once(sink.stdout, 'data')) as [string];
process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${port.trim()}`;
process.env.OTEL_BSP_MAX_QUEUE_SIZE ??= String(SPANS); // measure the cost, not the drops

const tracing = await import('../src/tracing/tracing.ts');
const stop = await tracing.startTracing(
  'bench',
  0,
  new Logger('WARN', 'text', (line) => process.stderr.write(line), 0),
);
const client = { peer: '127.0.0.1:54321', protocol: 'line', transport: 'tcp', traceContext: null };
const spec = { name: 'PING' } as CommandSpec;
const queue = tracing.spans!;

const before = process.cpuUsage();
for (let i = 0; i < SPANS; i++) {
  tracing.endCommandSpan(client, spec, tracing.spanStart(), 'PONG');
  if (i % 200 === 199) await new Promise((resolve) => setImmediate(resolve));
}
const during = process.cpuUsage(before);
await stop();
const all = process.cpuUsage(before);
sink.kill('SIGTERM');
const [summary] = (await once(sink.stdout, 'data')) as [string];
const [posts, bytes] = summary.trim().split(' ').map(Number);
const perSpan = (u: NodeJS.CpuUsage) => ((u.user + u.system) / SPANS).toFixed(2);
console.log(
  `${SPANS} spans: ${perSpan(during)} µs CPU each while serving, ${perSpan(all)} µs with the last ` +
    `export; exported ${queue.exported}, dropped ${queue.dropped}, failed ${queue.failed}; ` +
    `the sink got ${posts} requests, ${(bytes / SPANS).toFixed(0)} bytes a span`,
);
