// OpenTelemetry end to end: the server exports its spans by OTLP/HTTP (protobuf by default, JSON
// when OTEL_EXPORTER_OTLP_PROTOCOL says so) to a small receiver this test runs on loopback, which
// decodes them (protobuf with protobufjs, test/helpers/otlp.ts); the test checks the spans, their parents taken
// from traceparent (HTTP header, WebSocket URL), their attributes, and sampling (a ratio of 0
// keeps only what a sampled parent asks for).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { parseStatsFull, TestClient } from '../helpers/client.ts';
import { decodeAsJson } from '../helpers/otlp.ts';
import { freePort, startServer } from '../helpers/server.ts';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
  status?: { code?: number; message?: string };
}

const spans: OtlpSpan[] = [];
const resources: Record<string, unknown>[] = [];
const paths: string[] = [];
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (d: Buffer) => chunks.push(d));
  req.on('end', () => {
    const type = req.headers['content-type'];
    const encoding = req.headers['content-encoding'];
    paths.push(`${req.method} ${req.url} ${type}${encoding === undefined ? '' : ` ${encoding}`}`);
    const raw = Buffer.concat(chunks);
    const body = encoding === 'gzip' ? gunzipSync(raw) : raw;
    const payload = (
      type === 'application/x-protobuf' ? decodeAsJson(body) : JSON.parse(body.toString())
    ) as {
      resourceSpans: {
        resource: { attributes: OtlpSpan['attributes'] };
        scopeSpans: { spans: OtlpSpan[] }[];
      }[];
    };
    for (const rs of payload.resourceSpans) {
      resources.push(
        Object.fromEntries(
          rs.resource.attributes.map((a) => [
            a.key,
            a.value.stringValue ?? Number(a.value.intValue),
          ]),
        ),
      );
      for (const ss of rs.scopeSpans) spans.push(...ss.spans);
    }
    if (type === 'application/x-protobuf')
      res.writeHead(200, { 'content-type': type }).end(); // an empty ExportTraceServiceResponse
    else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
after(() => receiver.close());

/** A server with TRACING on, exporting to the collector listening at `collector`. */
const startTracingServer = (collector: { address(): unknown }, env: Record<string, string>) =>
  startServer({
    env: {
      TRACING: 'yes',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as { port: number }).port}`,
      ...env,
    },
  });

const attr = (span: OtlpSpan, key: string) => {
  const v = span.attributes.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue === undefined ? undefined : Number(v.intValue));
};

// Protobuf to a plain-HTTP collector goes by tcpool's own transport (src/tracing/otlp-http.ts);
// JSON with gzip by OpenTelemetry's, which tcpool uses for https: and compression.
for (const [protocol, compression, contentType] of [
  ['http/protobuf', 'none', 'application/x-protobuf'],
  ['http/json', 'gzip', 'application/json gzip'],
])
  test(`${protocol}: a span per command, parented by traceparent, with its attributes; ratio sampling`, async () => {
    spans.length = 0;
    resources.length = 0;
    paths.length = 0;
    const [httpPort, wsPort] = [await freePort(), await freePort()];
    const server = await startTracingServer(receiver, {
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: protocol,
      OTEL_EXPORTER_OTLP_COMPRESSION: compression,
      HTTP_PORT: String(httpPort),
      WS_PORT: String(wsPort),
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0',
      OTEL_BSP_SCHEDULE_DELAY: '50',
      OTEL_SERVICE_NAME: 'tcpool-under-test',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=ci,service.name=overridden',
    });
    try {
      const traceId = '0af7651916cd43dd8448eb211c80319c';
      const httpParent = 'b7ad6b7169203331';
      const wsParent = 'c7ad6b7169203332';
      const sampled = (parent: string) => `00-${traceId}-${parent}-01`;

      // HTTP, sampled parent: PING and an arity error.
      for (const [path, body] of [
        ['/v1/commands/PING', '{}'],
        ['/v1/commands/ECHO', '{"args":[]}'],
      ]) {
        await fetch(`http://127.0.0.1:${httpPort}${path}`, {
          method: 'POST',
          headers: { traceparent: sampled(httpParent), 'content-type': 'application/json' },
          body,
        });
      }
      // WebSocket, the parent in the URL (browsers cannot set headers).
      const ws = new WebSocket(`ws://127.0.0.1:${wsPort}/?traceparent=${sampled(wsParent)}`);
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const reply = new Promise((resolve) => ws.once('message', resolve));
      ws.send('ECHO traced');
      await reply;
      ws.close();
      // No parent: ratio 0 samples it out.
      const tcp = await fetch(`http://127.0.0.1:${httpPort}/v1/commands/TIME`, { method: 'POST' });
      assert.equal(tcp.status, 200);

      const until = Date.now() + 10_000;
      while (spans.length < 3 && Date.now() < until) await sleep(50);
      await sleep(300); // anything unexpected would arrive too
      assert.ok(
        paths.length > 0 && paths.every((p) => p === `POST /v1/traces ${contentType}`),
        paths.join(),
      );
      assert.deepEqual(spans.map((s) => s.name).sort(), ['ECHO', 'ECHO', 'PING']);

      const ping = spans.find((s) => s.name === 'PING')!;
      assert.equal(ping.traceId, traceId);
      assert.equal(ping.parentSpanId, httpParent);
      assert.equal(ping.kind, 2); // SERVER
      assert.equal(attr(ping, 'db.system.name'), 'tcpool');
      assert.equal(attr(ping, 'db.operation.name'), 'PING');
      assert.equal(attr(ping, 'tcpool.transport'), 'http');
      assert.equal(attr(ping, 'network.protocol.name'), 'json');
      assert.equal(attr(ping, 'client.address'), '127.0.0.1');
      assert.ok(Number(attr(ping, 'client.port')) > 0);
      assert.notEqual(ping.status?.code, 2);

      const failed = spans.find((s) => s.name === 'ECHO' && s.parentSpanId === httpParent)!;
      assert.equal(failed.status?.code, 2); // ERROR
      assert.equal(attr(failed, 'error.type'), 'ERR_WRONG_ARITY');

      // The resource: OTEL_SERVICE_NAME wins over OTEL_RESOURCE_ATTRIBUTES, as the spec says.
      for (const r of resources) {
        assert.equal(r['service.name'], 'tcpool-under-test');
        assert.equal(r['deployment.environment.name'], 'ci');
        assert.equal(r['telemetry.sdk.language'], 'nodejs');
        assert.match(String(r['service.version']), /^\d+\.\d+\.\d+/);
        assert.ok(Number.isInteger(r['tcpool.worker']));
      }

      // The workers count what became of their spans (STATS FULL, /metrics), once the collector
      // has answered, which may be after this test has the spans: poll (bounded). STATS FULL is
      // sampled out (ratio 0, no parent), so asking adds no span.
      const stats = await TestClient.connect(server.port);
      let full = await stats.request('STATS FULL');
      for (const until = Date.now() + 5000; Date.now() < until; ) {
        if (!/ trace_spans_exported=[0-2] /.test(full)) break;
        await sleep(50);
        full = await stats.request('STATS FULL');
      }
      stats.close();
      assert.match(full, / trace_spans_exported=3 trace_spans_dropped=0 trace_spans_failed=0\b/);

      const overWs = spans.find((s) => s.parentSpanId === wsParent)!;
      assert.equal(overWs.traceId, traceId);
      assert.equal(attr(overWs, 'tcpool.transport'), 'websocket');
      assert.equal(attr(overWs, 'network.protocol.name'), 'line');
    } finally {
      await server.stop();
    }
  });

test('the last spans leave at shutdown: the workers hand them to the supervisor, which sends them', async () => {
  const before = spans.length;
  const sent = paths.length;
  const server = await startTracingServer(receiver, {
    // OTLP/gRPC is not among the protocols tcpool sends: named in a warning, protobuf instead.
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    OTEL_TRACES_SAMPLER: 'always_on',
    // Nothing would leave on the timer during the test.
    OTEL_BSP_SCHEDULE_DELAY: '600000',
  });
  let exit: { code: number | null } | null = null;
  try {
    const client = await TestClient.connect(server.port);
    for (let i = 0; i < 25; i++)
      assert.equal(await client.request(`ECHO shutdown-${i}`), `shutdown-${i}`);
    client.close();
    await sleep(200);
    assert.equal(spans.length, before, 'no span left before the shutdown');
  } finally {
    exit = await server.stop();
  }
  assert.equal(exit?.code, 0);
  assert.match(
    server.stdout,
    /\[WARN\] Tracing: OTEL_EXPORTER_OTLP_PROTOCOL="grpc" is not supported \(tcpool exports by OTLP\/HTTP: http\/protobuf or http\/json\); using http\/protobuf/,
  );
  assert.ok(
    paths.slice(sent).every((p) => p === 'POST /v1/traces application/x-protobuf'),
    paths.join(),
  );
  const echoed = spans.slice(before).filter((s) => s.name === 'ECHO');
  assert.equal(echoed.length, 25, 'every span arrived before the server exited');
  assert.ok(echoed.every((s) => s.parentSpanId === undefined && /^[0-9a-f]{32}$/.test(s.traceId)));
});

test('a collector that never answers holds neither a client nor the shutdown', async () => {
  // Takes the connection and the request, and never answers.
  const held: Socket[] = [];
  const silent = createNetServer((socket) => {
    held.push(socket);
    socket.resume();
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const server = await startTracingServer(silent, {
    OTEL_TRACES_SAMPLER: 'always_on',
    OTEL_BSP_SCHEDULE_DELAY: '50',
    // Two batches of 4 out and unanswered, 4 waiting: the rest is dropped, and counted.
    OTEL_BSP_MAX_QUEUE_SIZE: '4',
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '4',
    SHUTDOWN_TIMEOUT_MS: '1500',
    THREAD_POOL_SIZE: '1',
  });
  try {
    const client = await TestClient.connect(server.port);
    for (let i = 0; i < 40; i++) assert.equal(await client.request('PING'), 'PONG');
    await sleep(300); // the exports are out, unanswered
    assert.equal(await client.request('ECHO still served'), 'still served');
    const line = await client.request('STATS FULL');
    const full = parseStatsFull(line);
    const counted = line.match(
      /trace_spans_exported=(\d+) trace_spans_dropped=(\d+) trace_spans_failed=(\d+)/,
    );
    assert.ok(counted, 'the counters are in STATS FULL');
    const [exported, dropped, failed] = counted.slice(1).map(Number);
    assert.equal(exported, 0);
    assert.equal(failed, 0);
    // 40 PINGs and an ECHO: 8 out, 4 waiting, the rest dropped (the STATS FULL are spans too).
    assert.ok(dropped >= 29, `${dropped} dropped`);
    assert.ok(full.commands >= 41, `${full.commands} commands`);
    // A worker's line, which reaches the log through the supervisor: wait for it.
    await server.waitForLog(
      /\[WARN\] Tracing: spans dropped: the queue is full \(OTEL_BSP_MAX_QUEUE_SIZE=4\)/,
    );
    client.close();
    const started = Date.now();
    const exit = await server.stop('SIGTERM', 10_000);
    assert.equal(exit.code, 0);
    // The worker waits within SHUTDOWN_TIMEOUT_MS, the supervisor 1 s more at most.
    assert.ok(Date.now() - started < 1500 + 1000 + 2500, `${Date.now() - started} ms`);
    assert.match(
      server.stdout,
      /\[WARN\] Tracing: \d+ spans not sent: the collector had not answered/,
    );
  } finally {
    // Stopped above; a failed assertion must not leave it running.
    if (server.child.exitCode === null && server.child.signalCode === null)
      await server.stop('SIGKILL');
    for (const s of held) s.destroy();
    silent.close();
  }
});
