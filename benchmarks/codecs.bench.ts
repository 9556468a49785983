// npm run bench:micro — the per-request costs of the codecs and the registry, so that a
// regression shows up here before it shows up in compare.sh.
import { builtins } from '../src/commands/builtin/index.ts';
import { Registry } from '../src/commands/registry.ts';
import { LINE, LineDecoder, writeLineReply } from '../src/protocol/line.ts';
import { Output } from '../src/protocol/output.ts';
import { Preencoded } from '../src/protocol/reply.ts';
import { encodeRespRequest, RespDecoder, writeResp } from '../src/protocol/resp.ts';
import { scanReply } from '../src/protocol/resp-reply.ts';
import { MetricsLayout, WorkerMetrics } from '../src/stats/metrics.ts';
import { bench } from './harness.ts';

const N = 10_000;
const pings = Buffer.from('PING\r\n'.repeat(N));
const echoes = Buffer.from('ECHO hello world\n'.repeat(N));
const respPings = Buffer.concat(Array(N).fill(encodeRespRequest(['PING'])));
const respSets = Buffer.concat(Array(N).fill(encodeRespRequest(['ECHO', 'x'.repeat(100)])));

bench('line decoder: 10k PINGs in one chunk (per line)', N, () => {
  const d = new LineDecoder(65536);
  d.push(pings);
  while (d.step() === LINE);
});

bench('line decoder: 10k PINGs, 7-byte chunks (per line)', N, () => {
  const d = new LineDecoder(65536);
  for (let i = 0; i < pings.length; i += 7) {
    d.push(pings.subarray(i, i + 7));
    while (d.step() === LINE);
  }
});

bench('line decoder: 10k ECHOs (per line)', N, () => {
  const d = new LineDecoder(65536);
  d.push(echoes);
  while (d.step() === LINE);
});

bench('RESP decoder: 10k PING arrays (per request)', N, () => {
  const d = new RespDecoder({
    maxLine: 65536,
    maxBulk: 1 << 24,
    maxArgs: 1 << 20,
    maxRequest: 1 << 26,
  });
  d.push(respPings);
  while (d.next() !== null);
});

bench('RESP decoder: 10k ECHO 100 B arrays (per request)', N, () => {
  const d = new RespDecoder({
    maxLine: 65536,
    maxBulk: 1 << 24,
    maxArgs: 1 << 20,
    maxRequest: 1 << 26,
  });
  d.push(respSets);
  while (d.next() !== null);
});

const PONG = new Preencoded('PONG');
const out = new Output();
bench('line encoder: preencoded PONG into one batch (per reply)', N, () => {
  for (let i = 0; i < N; i++) writeLineReply(PONG, out);
  out.take();
});
bench('RESP encoder: preencoded PONG into one batch (per reply)', N, () => {
  for (let i = 0; i < N; i++) writeResp(PONG, 2, out);
  out.take();
});
const payload = Buffer.from('x'.repeat(100));
bench('RESP encoder: 100 B bulk into one batch (per reply)', N, () => {
  for (let i = 0; i < N; i++) writeResp(payload, 2, out);
  out.take();
});

const registry = new Registry();
for (const spec of builtins) registry.register(spec);
const names = [
  Buffer.from('PING'),
  Buffer.from('echo'),
  Buffer.from('Stats'),
  Buffer.from('NOSUCHCMD'),
];
bench('registry: lookupBytes (4 names, mixed case)', 4 * N, () => {
  for (let i = 0; i < N; i++) for (const n of names) registry.lookupBytes(n, 0, n.length);
});
bench('registry: lookup by string, for comparison', 4 * N, () => {
  for (let i = 0; i < N; i++) for (const n of names) registry.lookup(n.toString('latin1'));
});

const replies = Buffer.from('+PONG\r\n'.repeat(N));
bench('RESP reply scanner (bench client): +PONG (per reply)', N, () => {
  for (let at = 0; at < replies.length; ) at = scanReply(replies, at);
});

// What /metrics costs the hot path: per command, an index lookup and two typed-array increments;
// per batch, two clock reads.
const specs = registry.list();
const layout = new MetricsLayout(
  specs.map((s) => s.name),
  4,
);
const metrics = new WorkerMetrics(layout.createBuffer(), layout, 1, specs);
const ping = registry.lookup('PING');
bench('metrics: one command in its own batch (no pipelining)', N, () => {
  for (let i = 0; i < N; i++) {
    metrics.startBatch();
    metrics.command(metrics.indexOf(ping), 0);
    metrics.endBatch();
  }
});
bench('metrics: per command in batches of 16 (pipelined)', N, () => {
  for (let i = 0; i < N / 16; i++) {
    metrics.startBatch();
    for (let j = 0; j < 16; j++) metrics.command(metrics.indexOf(ping), 1);
    metrics.endBatch();
  }
});
