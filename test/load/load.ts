// npm run test:load — sustained load: N clients × M requests against a real server, reporting
// throughput, latency percentiles and the server's RSS before and after. Not part of npm test.
//
//   npm run test:load -- [--clients 50] [--requests 20000] [--pipeline 1] [--command PING]
//                        [--threads 4] [--port P (use a running server instead of starting one)]
import { readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { startServer, type ServerProcess } from '../helpers/server.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '50' },
    requests: { type: 'string', default: '20000' },
    pipeline: { type: 'string', default: '1' },
    command: { type: 'string', default: 'PING' },
    threads: { type: 'string', default: '' },
    port: { type: 'string', default: '' },
    'timeout-s': { type: 'string', default: '120' },
  },
});
const clients = Number(values.clients);
const perClient = Number(values.requests);
const pipeline = Number(values.pipeline);
const command = values.command!;
const deadline = Date.now() + Number(values['timeout-s']) * 1000;

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

let server: ServerProcess | null = null;
let port = Number(values.port);
if (!values.port) {
  server = await startServer({ env: { THREAD_POOL_SIZE: values.threads || undefined } });
  port = server.port;
}
const pid = server?.pid;

/** One client: keeps `pipeline` requests in flight until it has sent `perClient`. */
function runClient(latencies: Float64Array, offset: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket: Socket = createConnection({ port, host: '127.0.0.1', noDelay: true });
    const sentAt = new Float64Array(perClient);
    let sent = 0;
    let done = 0;
    let errors = 0;
    let partial = '';
    const line = command + '\n';
    const send = (): void => {
      let batch = '';
      while (sent < perClient && sent - done < pipeline) {
        sentAt[sent++] = performance.now();
        batch += line;
      }
      if (batch) socket.write(batch);
    };
    socket.setEncoding('latin1');
    socket.on('connect', send);
    socket.on('data', (chunk: string) => {
      const text = partial + chunk;
      let start = 0;
      for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
        if (text.startsWith('ERROR', start)) errors++;
        latencies[offset + done] = performance.now() - sentAt[done];
        done++;
        start = nl + 1;
      }
      partial = text.slice(start);
      if (done === perClient) {
        socket.end();
        resolve(errors);
      } else if (Date.now() > deadline) {
        socket.destroy();
        reject(new Error(`timed out after ${done} of ${perClient} replies`));
      } else send();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      if (done < perClient)
        reject(new Error(`connection closed after ${done} of ${perClient} replies`));
    });
  });
}

try {
  const rssBefore = pid ? rssKiB(pid) : NaN;
  const latencies = new Float64Array(clients * perClient);
  const t0 = performance.now();
  const errors = (
    await Promise.all(
      Array.from({ length: clients }, (_, i) => runClient(latencies, i * perClient)),
    )
  ).reduce((a, b) => a + b, 0);
  const seconds = (performance.now() - t0) / 1000;
  const rssAfter = pid ? rssKiB(pid) : NaN;
  latencies.sort();
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
  const us = (ms: number) => `${(ms * 1000).toFixed(0)}µs`;
  const total = clients * perClient;
  console.log(
    `load: ${clients} clients × ${perClient} requests of "${command}", pipeline ${pipeline}`,
  );
  console.log(
    `requests ${total} in ${seconds.toFixed(2)} s = ${Math.round(total / seconds)} req/s, errors ${errors}`,
  );
  console.log(
    `latency p50 ${us(pct(50))} p90 ${us(pct(90))} p99 ${us(pct(99))} p99.9 ${us(pct(99.9))} max ${us(latencies[latencies.length - 1])}`,
  );
  if (pid)
    console.log(
      `server RSS before ${(rssBefore / 1024).toFixed(1)} MiB, after ${(rssAfter / 1024).toFixed(1)} MiB`,
    );
  process.exitCode = errors > 0 ? 1 : 0;
} catch (err) {
  console.error(`load: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await server?.stop();
}
