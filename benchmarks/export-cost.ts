// npm run bench:export -- [MODE …] — the CPU one OTLP export costs the thread that sends it: 300
// request bodies of 130 KB (a batch of 512 spans in protobuf) at 30 a second, as the supervisor
// sends them at P=16 with 1 % sampling, to a sink in another process. At that rate the sending
// code stays in V8's baseline tiers, which is what a server pays. Modes (default: all of them,
// each in its own process):
//   idle    the loop alone (the timers and promises between exports): subtract it from the rest
//   tcpool  tcpool's exporter (src/tracing/exporter.ts: its own transport for a plain http: URL)
//   otel    OpenTelemetry's exporter (createOtlpHttpExportDelegate: its delegate and Node's http)
//   http    http.request with a keep-alive agent, nothing else
//   raw     the request written on a net.Socket, the answer's end found by hand (the floor)
// Prints user and system CPU per export for each.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';

const MODES = ['idle', 'tcpool', 'otel', 'http', 'raw'];
const N = 300;
const RATE = 30;
const body = Buffer.alloc(130_000, 7);

if (process.env.EXPORT_COST_CHILD === undefined) {
  const modes = process.argv.slice(2).length > 0 ? process.argv.slice(2) : MODES;
  const sink = spawn(
    process.execPath,
    [
      '-e',
      `const server = require('node:http').createServer((req, res) => {
         req.resume();
         req.on('end', () => res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf' }).end());
       }).listen(0, '127.0.0.1', () => console.log(server.address().port));`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  sink.stdout.setEncoding('utf8');
  const [port] = (await once(sink.stdout, 'data')) as [string];
  try {
    for (const mode of modes) {
      const child = spawn(process.execPath, [new URL(import.meta.url).pathname, mode], {
        env: { ...process.env, EXPORT_COST_CHILD: port.trim() },
        stdio: 'inherit',
      });
      await once(child, 'exit');
    }
  } finally {
    sink.kill();
  }
} else {
  const url = new URL(`http://127.0.0.1:${process.env.EXPORT_COST_CHILD}/v1/traces`);
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = url.origin;
  const mode = process.argv[2];
  const send = await sender(mode, url);
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => send(resolve));
  const before = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    await new Promise<void>((resolve) => send(resolve));
    await new Promise((resolve) => setTimeout(resolve, 1000 / RATE));
  }
  const used = process.cpuUsage(before);
  console.log(
    `${mode.padEnd(7)} ${(used.user / N).toFixed(0).padStart(5)} µs user, ${(used.system / N).toFixed(0).padStart(4)} µs system per export`,
  );
  process.exit(0);
}

async function sender(mode: string, url: URL): Promise<(done: () => void) => void> {
  switch (mode) {
    case 'idle':
      return (done) => setImmediate(done);
    case 'tcpool': {
      const { otlpHttpExporter } = await import('../src/tracing/exporter.ts');
      const exporter = await otlpHttpExporter(30, 'http/protobuf');
      return (done) => exporter.send(body, 512, () => done());
    }
    case 'otel': {
      const otlp = await import('@opentelemetry/otlp-exporter-base/node-http');
      const delegate = otlp.createOtlpHttpExportDelegate(
        otlp.convertLegacyHttpOptions({}, 'TRACES', 'v1/traces', {
          'Content-Type': 'application/x-protobuf',
        }),
        { serializeRequest: (b: Buffer) => b, deserializeResponse: () => ({}) },
        'otlp_http_span_exporter',
        { name: 'span', countItems: () => 512 },
        undefined,
      );
      return (done) => delegate.export(body, () => done());
    }
    case 'http': {
      const agent = new http.Agent({ keepAlive: true });
      return (done) => {
        const request = http.request(
          url,
          {
            method: 'POST',
            agent,
            headers: { 'Content-Type': 'application/x-protobuf', 'Content-Length': body.length },
          },
          (response) => {
            response.resume();
            response.on('end', done);
          },
        );
        request.end(body);
      };
    }
    case 'raw': {
      const socket = net.connect(Number(url.port), url.hostname);
      await once(socket, 'connect');
      let waiting: (() => void) | null = null;
      socket.on('data', (d: Buffer) => {
        // The sink's answers have no body: the end of the head is the end of the answer.
        if (waiting !== null && d.includes('\r\n\r\n')) {
          const resolve = waiting;
          waiting = null;
          resolve();
        }
      });
      const head = Buffer.from(
        `POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${body.length}\r\n\r\n`,
      );
      return (done) => {
        waiting = done;
        socket.cork();
        socket.write(head);
        socket.write(body);
        socket.uncork();
      };
    }
    default:
      throw new Error(`export-cost: unknown mode ${mode} (${MODES.join(', ')})`);
  }
}
