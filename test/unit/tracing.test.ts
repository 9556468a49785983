// The tracing codec and batch processor, socket-free: what RequestBody writes is valid OTLP/JSON
// with the ids, times, flags, parent and attributes it was given (checked by JSON.parse and an
// independent BigInt reference for the times), and SpanQueue batches, drops, times out and
// drains as the OTEL_BSP_* settings say.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import {
  clientAttributes,
  encodeParent,
  envelope,
  RequestBody,
  spanTail,
} from '../../src/tracing/otlp-json.ts';
import { SpanBatch } from '../../src/tracing/span-batch.ts';
import type { OtlpSpan } from '../helpers/otlp.ts';
import { type ExportBatch, SpanQueue } from '../../src/tracing/span-queue.ts';
import { Logger } from '../../src/log/logger.ts';
import {
  queueOptionsFromEnv,
  sampled,
  sampler,
  startTracing,
  type TracedClient,
  untraced,
} from '../../src/tracing/tracing.ts';

type Span = OtlpSpan<string> & { status: { code?: number; message?: string } };
interface Body {
  resourceSpans: {
    resource: { attributes: { key: string; value: Record<string, unknown> }[] };
    scopeSpans: { scope: { name: string; version: string }; spans: Span[] }[];
  }[];
}

const env = envelope(
  { 'service.name': 'tcpool', 'tcpool.worker': 3, ratio: 0.5, on: true, list: ['a', 1] },
  { name: 'tcpool', version: '9.9.9' },
);
const attrs = clientAttributes('resp3', 'tcp', '::1', 40123);
const spansOf = (body: Buffer): Span[] => {
  const parsed = JSON.parse(body.toString()) as Body;
  return parsed.resourceSpans[0].scopeSpans[0].spans;
};
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
/** Unix nanoseconds of a performance.now() reading, computed apart (to the microsecond). */
const reference = (now: number): bigint =>
  BigInt(Math.round(performance.timeOrigin * 1000)) * 1000n + BigInt(Math.round(now * 1e6));

test('a root span: ids from the random bytes, flags, kind, name, attributes, unset status', () => {
  const random = Uint8Array.from({ length: 30 }, (_, i) => (i * 37 + 5) & 0xff);
  const body = new RequestBody(env);
  body.addSpan(random, 3, null, 1000.25, 1000.5, spanTail('PING', attrs, null));
  const parsed = JSON.parse(body.finish().toString()) as Body;
  const rs = parsed.resourceSpans[0];
  assert.deepEqual(rs.resource.attributes, [
    { key: 'service.name', value: { stringValue: 'tcpool' } },
    { key: 'tcpool.worker', value: { intValue: 3 } },
    { key: 'ratio', value: { doubleValue: 0.5 } },
    { key: 'on', value: { boolValue: true } },
    {
      key: 'list',
      value: { arrayValue: { values: [{ stringValue: 'a' }, { intValue: 1 }] } },
    },
  ]);
  assert.deepEqual(rs.scopeSpans[0].scope, { name: 'tcpool', version: '9.9.9' });
  const [span] = rs.scopeSpans[0].spans;
  assert.equal(span.traceId, hex(random.subarray(3, 19)));
  assert.equal(span.spanId, hex(random.subarray(19, 27)));
  assert.equal(span.parentSpanId, undefined);
  assert.equal(span.flags, 0x101); // sampled, and "is_remote" known (false)
  assert.equal(span.kind, 2);
  assert.equal(span.name, 'PING');
  assert.deepEqual(span.status, {});
  assert.deepEqual(span.attributes, [
    { key: 'db.operation.name', value: { stringValue: 'PING' } },
    { key: 'db.system.name', value: { stringValue: 'tcpool' } },
    { key: 'network.protocol.name', value: { stringValue: 'resp3' } },
    { key: 'network.transport', value: { stringValue: 'tcp' } },
    { key: 'tcpool.transport', value: { stringValue: 'tcp' } },
    { key: 'client.address', value: { stringValue: '::1' } },
    { key: 'client.port', value: { intValue: 40123 } },
  ]);
  assert.equal(BigInt(span.endTimeUnixNano) - BigInt(span.startTimeUnixNano), 250_000n);
});

test('a span with a remote parent: its trace id, parentSpanId, tracestate and flags', () => {
  const parent = encodeParent(
    '0af7651916cd43dd8448eb211c80319c',
    'b7ad6b7169203331',
    'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
  );
  const random = new Uint8Array(8).fill(0xab);
  const body = new RequestBody(env);
  body.addSpan(random, 0, parent, 5, 6, spanTail('ECHO', attrs, null));
  const [span] = spansOf(body.finish());
  assert.equal(span.traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.equal(span.spanId, 'abababababababab');
  assert.equal(span.parentSpanId, 'b7ad6b7169203331');
  assert.equal(span.traceState, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
  assert.equal(span.flags, 0x301); // sampled, parent is remote
});

test('an error span: status ERROR, its message and code, JSON escapes in names and messages', () => {
  const tail = spanTail('CAFÉ "x"', attrs, {
    code: 'ERR_WRONG_ARITY',
    message: 'wrong number of arguments for "ECHO"\n\u2028 ünï',
  });
  const body = new RequestBody(env);
  body.addSpan(new Uint8Array(24).fill(1), 0, null, 1, 2, tail);
  const [span] = spansOf(body.finish());
  assert.equal(span.name, 'CAFÉ "x"');
  assert.deepEqual(span.status, {
    code: 2,
    message: 'wrong number of arguments for "ECHO"\n\u2028 ünï',
  });
  const keys = span.attributes.map((a) => a.key);
  assert.deepEqual(keys.slice(-2), ['error.type', 'db.response.status_code']);
  assert.deepEqual(span.attributes.at(-1)!.value, { stringValue: 'ERR_WRONG_ARITY' });
});

test('an all-zero id is never written (W3C: invalid)', () => {
  const body = new RequestBody(env);
  body.addSpan(new Uint8Array(24), 0, null, 1, 2, spanTail('PING', attrs, null));
  const [span] = spansOf(body.finish());
  assert.match(span.traceId, /^0{31}1$/);
  assert.match(span.spanId, /^0{15}1$/);
});

test('times: Unix nanoseconds to the microsecond, nine zero-padded digits (property)', () => {
  fc.assert(
    fc.property(
      fc.double({ min: 0, max: 1e10, noNaN: true }),
      fc.double({ min: 0, max: 1e6, noNaN: true }),
      (start, duration) => {
        const body = new RequestBody(env);
        body.addSpan(
          new Uint8Array(24).fill(7),
          0,
          null,
          start,
          start + duration,
          spanTail('T', attrs, null),
        );
        const [span] = spansOf(body.finish());
        for (const [text, now] of [
          [span.startTimeUnixNano, start],
          [span.endTimeUnixNano, start + duration],
        ] as const) {
          assert.match(text, /^[1-9][0-9]{18}$/);
          const diff = BigInt(text) - reference(now);
          assert.ok(diff >= -1000n && diff <= 1000n, `${text} vs ${reference(now)}`);
        }
      },
    ),
    { numRuns: 500 },
  );
  // Leading zeros in the nanoseconds are kept.
  const body = new RequestBody(env);
  const whole = Math.ceil(performance.timeOrigin / 1000) * 1000 - performance.timeOrigin;
  body.addSpan(
    new Uint8Array(24).fill(7),
    0,
    null,
    whole + 0.000_003,
    whole + 1,
    spanTail('T', attrs, null),
  );
  const [span] = spansOf(body.finish());
  assert.match(span.startTimeUnixNano, /00000[0-9]{2}$/);
});

test('a body grows past its first buffer and stays valid; a reused buffer is written over', () => {
  const tail = spanTail('ECHO', attrs, null);
  const random = randomBytes(24 * 1000);
  const body = new RequestBody(env);
  for (let i = 0; i < 1000; i++) body.addSpan(random, i * 24, null, i, i + 1, tail);
  const first = spansOf(body.finish());
  assert.equal(first.length, 1000);
  assert.equal(new Set(first.map((s) => s.spanId)).size, 1000);
  assert.ok(body.buffer.length > 64 * 1024);
  const again = new RequestBody(env, body.buffer);
  again.addSpan(random, 0, null, 1, 2, tail);
  assert.equal(spansOf(again.finish()).length, 1);
});

test('a batch records spans and encodes them in order: ids from 24 random bytes each', () => {
  const parent = encodeParent('0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331', '');
  const batch = new SpanBatch(2); // grows past its first capacity
  const names = ['PING', 'ECHO', 'TIME', 'STATS', 'QUIT'];
  for (const [i, name] of names.entries())
    batch.add(i === 2 ? parent : null, 10 * i, 10 * i + 1, spanTail(name, attrs, null));
  assert.equal(batch.count, 5);
  const random = randomBytes(24 * 5);
  const spans = spansOf(batch.encode(env, random).bytes);
  assert.deepEqual(
    spans.map((s) => s.name),
    names,
  );
  for (const [i, span] of spans.entries()) {
    const slot = random.subarray(24 * i, 24 * i + 24);
    assert.equal(span.spanId, hex(slot.subarray(16)));
    assert.equal(
      span.traceId,
      i === 2 ? '0af7651916cd43dd8448eb211c80319c' : hex(slot.subarray(0, 16)),
    );
    assert.equal(span.parentSpanId, i === 2 ? 'b7ad6b7169203331' : undefined);
    assert.equal(BigInt(span.endTimeUnixNano) - BigInt(span.startTimeUnixNano), 1_000_000n);
  }
});

// --- SpanQueue ------------------------------------------------------------------------------

const tail = spanTail('PING', attrs, null);
const options = {
  maxQueueSize: 10,
  maxExportBatchSize: 4,
  scheduleDelayMs: 60_000,
  exportTimeoutMs: 60_000,
};
const tick = () => new Promise((resolve) => setImmediate(resolve));

function queueWith(send: ExportBatch, overrides: Partial<typeof options> = {}) {
  const events = { exported: [] as number[], dropped: [] as number[], failed: [] as string[] };
  const queue = new SpanQueue({ ...options, ...overrides }, env, send, {
    exported: (n) => events.exported.push(n),
    dropped: (total) => events.dropped.push(total),
    failed: (n, error) => events.failed.push(`${n}: ${error.message}`),
  });
  return { queue, events };
}

test('a full batch leaves after the command; at most two exports at once; drops past the queue size', async () => {
  const sent: { spans: number; done: (ok: boolean) => void }[] = [];
  const { queue, events } = queueWith((body, n, done) => {
    assert.equal(spansOf(body).length, n);
    sent.push({ spans: n, done });
  });
  for (let i = 0; i < 3; i++) queue.add(null, 1, 2, tail);
  await tick();
  assert.equal(sent.length, 0, 'no batch before 4 spans');
  queue.add(null, 1, 2, tail);
  assert.equal(sent.length, 0, 'not inside the command');
  await tick();
  assert.deepEqual(
    sent.map((s) => s.spans),
    [4],
  );
  for (let i = 0; i < 8; i++) queue.add(null, 1, 2, tail);
  await tick();
  assert.equal(sent.length, 2, 'the third batch waits for a slot');
  assert.equal(queue.pending, 4);
  for (let i = 0; i < 8; i++) queue.add(null, 1, 2, tail);
  assert.equal(queue.pending, 10);
  assert.deepEqual(events.dropped, [1, 2]);
  sent[0].done(true);
  assert.equal(sent.length, 3, 'a slot freed sends the next full batch');
  sent[1].done(false);
  assert.deepEqual(events.failed, ['4: export failed']);
  const drained = queue.shutdown();
  await tick();
  for (const s of sent.slice(2)) s.done(true);
  await tick();
  for (const s of sent.slice(4)) s.done(true);
  await drained;
  assert.equal(queue.exported, 4 + 4 + 4 + 2);
  assert.deepEqual(events.exported, [4, 4, 4, 2]);
  assert.equal(queue.failed, 4);
  assert.equal(queue.dropped, 2);
  assert.equal(queue.pending, 0);
});

test('the schedule delay sends a partial batch; an export with no answer times out', async () => {
  const sent: number[] = [];
  const { queue, events } = queueWith((_body, n) => sent.push(n), {
    scheduleDelayMs: 30,
    exportTimeoutMs: 40,
  });
  queue.add(null, 1, 2, tail);
  const until = Date.now() + 5000;
  while (sent.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(sent, [1]);
  while (events.failed.length === 0 && Date.now() < until)
    await new Promise((r) => setTimeout(r, 5));
  assert.match(events.failed[0], /^1: no answer in 40 ms \(OTEL_BSP_EXPORT_TIMEOUT\)$/);
  await queue.shutdown();
});

test('an exporter that throws fails its batch and nothing else', async () => {
  const { queue, events } = queueWith(() => {
    throw new Error('boom');
  });
  for (let i = 0; i < 4; i++) queue.add(null, 1, 2, tail);
  await queue.shutdown();
  assert.deepEqual(events.failed, ['4: boom']);
  assert.equal(queue.failed, 4);
});

test('a sent body\u2019s memory is reused, a timed-out one\u2019s is not', async () => {
  const bodies: Buffer[] = [];
  let answer = true;
  const { queue } = queueWith(
    (body, _n, done) => {
      bodies.push(body);
      if (answer) done(true);
    },
    { exportTimeoutMs: 20 },
  );
  const batch = () => {
    for (let i = 0; i < 4; i++) queue.add(null, 1, 2, tail);
  };
  batch();
  await tick();
  batch();
  await tick();
  assert.equal(bodies[1].buffer, bodies[0].buffer, 'the same memory after a success');
  answer = false;
  batch();
  await tick();
  await new Promise((r) => setTimeout(r, 60)); // the third times out
  answer = true;
  batch();
  await tick();
  assert.notEqual(bodies[3].buffer, bodies[2].buffer, 'not the memory the exporter may still hold');
  await queue.shutdown();
});

test('memory handed to another thread is reused when the exporter gives it back', async () => {
  const sentIn: ArrayBufferLike[] = [];
  const givenBack: ArrayBuffer[] = [];
  const { queue } = queueWith((body, _n, done) => {
    assert.equal(spansOf(body).length, 4);
    sentIn.push(body.buffer);
    // As the worker does: the memory moves (transferred) and comes back with the answer.
    const moved = structuredClone(body.buffer as ArrayBuffer, {
      transfer: [body.buffer as ArrayBuffer],
    });
    assert.equal(body.buffer.byteLength, 0, 'detached here');
    givenBack.push(moved);
    done(true, undefined, moved);
  });
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 4; i++) queue.add(null, 1, 2, tail);
    await tick();
  }
  assert.equal(queue.exported, 12);
  assert.equal(sentIn[1], givenBack[0], 'the second body was written in the memory given back');
  assert.equal(sentIn[2], givenBack[1]);
  await queue.shutdown();
});

test('OTEL_BSP_* settings: defaults, values, and a bad value named in a warning', () => {
  const saved = { ...process.env };
  const warnings: string[] = [];
  try {
    for (const k of Object.keys(process.env)) if (k.startsWith('OTEL_BSP_')) delete process.env[k];
    assert.deepEqual(
      queueOptionsFromEnv((m) => warnings.push(m)),
      {
        maxQueueSize: 2048,
        maxExportBatchSize: 512,
        scheduleDelayMs: 5000,
        exportTimeoutMs: 30000,
      },
    );
    process.env.OTEL_BSP_MAX_QUEUE_SIZE = '100';
    process.env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE = '200';
    process.env.OTEL_BSP_SCHEDULE_DELAY = '-5';
    process.env.OTEL_BSP_EXPORT_TIMEOUT = '1000';
    assert.deepEqual(
      queueOptionsFromEnv((m) => warnings.push(m)),
      {
        maxQueueSize: 100,
        maxExportBatchSize: 100,
        scheduleDelayMs: 5000,
        exportTimeoutMs: 1000,
      },
    );
    assert.deepEqual(warnings, [
      'Tracing: OTEL_BSP_MAX_EXPORT_BATCH_SIZE=200 exceeds OTEL_BSP_MAX_QUEUE_SIZE=100; using 100',
      'Tracing: OTEL_BSP_SCHEDULE_DELAY="-5" is not a positive integer; using 5000',
    ]);
  } finally {
    process.env = saved;
  }
});

test('shutdown waits for a collector only as long as it is told', async () => {
  const { queue } = queueWith(() => {}, { exportTimeoutMs: 60_000 }); // never answers
  for (let i = 0; i < 6; i++) queue.add(null, 1, 2, tail);
  const started = Date.now();
  assert.equal(await queue.shutdown(50), false);
  assert.ok(Date.now() - started < 2000);
  assert.equal(queue.unsent, 6);
});

// --- sampling ---------------------------------------------------------------------------------

/** Runs `n` commands through the executor's test, as execute() does; returns those traced. */
function traceDecisions(clients: TracedClient[], n: number): number[] {
  const traced = new Array<number>(clients.length).fill(0);
  for (let i = 0; i < n; i++) {
    const k = i % clients.length;
    if (!untraced(clients[k]) && sampled(clients[k])) traced[k]++;
  }
  return traced;
}

const root: TracedClient = {
  peer: '127.0.0.1:1',
  protocol: 'line',
  transport: 'tcp',
  traceContext: null,
};
const withParent = (isSampled: boolean): TracedClient => ({
  ...root,
  traceContext: {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    sampled: isSampled,
    traceState: '',
    encoded: encodeParent('0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331', ''),
  },
});

async function withSampler<T>(
  env: Record<string, string>,
  fn: (warnings: string[]) => T,
): Promise<T> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  const warnings: string[] = [];
  const logger = new Logger('WARN', 'text', (line) => warnings.push(line), 0);
  const stop = await startTracing('test', 0, logger, (_body, _n, done) => done(true));
  try {
    return fn(warnings);
  } finally {
    await stop(1000);
    process.env = saved;
  }
}

test('tracing off: every command is untraced, and the executor never asks further', () => {
  for (let i = 0; i < 10_000; i++) assert.equal(untraced(root), true);
  assert.equal(sampler.countdown, Number.POSITIVE_INFINITY);
});

test('traceidratio: the ratio holds for commands without a parent, whatever share has one', async () => {
  await withSampler(
    { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.01' },
    () => {
      // 9 of 10 commands carry an unsampled parent, 1 in 10 none.
      const clients = [...Array(9).fill(withParent(false)), root];
      const traced = traceDecisions(clients, 2_000_000);
      assert.deepEqual(traced.slice(0, 9), Array(9).fill(0), 'an unsampled parent decides');
      // 200,000 root commands at 1 %: 2,000 expected; ±15 % is > 6 standard deviations.
      assert.ok(traced[9] > 1700 && traced[9] < 2300, `${traced[9]} root commands traced`);
    },
  );
  await withSampler({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }, () => {
    const traced = traceDecisions([root, withParent(true), withParent(false)], 30_000);
    assert.deepEqual(traced, [0, 10_000, 0]);
  });
  await withSampler({ OTEL_TRACES_SAMPLER: 'always_off' }, () => {
    assert.deepEqual(traceDecisions([root, withParent(true)], 20_000), [0, 0]);
  });
  await withSampler({ OTEL_TRACES_SAMPLER: 'always_on' }, () => {
    assert.deepEqual(traceDecisions([root, withParent(false)], 20_000), [10_000, 10_000]);
  });
  // Stopped: back to untraced for everyone.
  assert.equal(untraced(root), true);
});

test('sampler settings: an empty ratio is unset, bad values are named in a warning', async () => {
  await withSampler({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '' }, (w) => {
    assert.deepEqual(traceDecisions([root], 1000), [1000]);
    assert.deepEqual(w, []);
  });
  await withSampler({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' }, (w) => {
    assert.deepEqual(traceDecisions([root], 1000), [1000]);
    assert.match(w.join(''), /OTEL_TRACES_SAMPLER_ARG="2" is not a ratio from 0 to 1; using 1/);
  });
  await withSampler({ OTEL_TRACES_SAMPLER: 'jaeger_remote' }, (w) => {
    assert.match(w.join(''), /OTEL_TRACES_SAMPLER="jaeger_remote" is not one of/);
    assert.deepEqual(traceDecisions([root, withParent(false)], 1000), [500, 0]);
  });
});
