// The OTLP/protobuf encoding, socket-free, read by a decoder nobody here wrote: protobufjs with
// the opentelemetry-proto messages tcpool writes (ExportTraceServiceRequest and what it holds,
// field numbers as in opentelemetry-proto). That schema is itself checked against what
// OpenTelemetry's own ProtobufTraceSerializer writes. Then every batch, whatever its spans,
// must decode to what the OTLP/JSON encoding of the same batch says (property).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { performance } from 'node:perf_hooks';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import fc from 'fast-check';
import { json } from '../../src/tracing/otlp-json.ts';
import { protobuf } from '../../src/tracing/otlp-proto.ts';
import { type EncodedParent, SpanBatch, type SpanEncoding } from '../../src/tracing/span-batch.ts';
import { asJson, decode, hex, spansIn } from '../helpers/otlp.ts';

const resource = {
  'service.name': 'tcpool',
  'tcpool.worker': 3,
  ratio: 0.5,
  on: true,
  negative: -7,
  list: ['a', 1],
  map: { k: 'v' },
};
const scope = { name: 'tcpool', version: '9.9.9' };
const proto = protobuf.envelope(resource, scope);

test("the test's schema reads what OpenTelemetry's own ProtobufTraceSerializer writes", () => {
  const start: [number, number] = [1_790_000_000, 123_456_789];
  const bytes = ProtobufTraceSerializer.serializeRequest([
    {
      name: 'GET',
      kind: 1, // SpanKind.SERVER in the API (+1 in OTLP)
      spanContext: () => ({
        traceId: '0af7651916cd43dd8448eb211c80319c',
        spanId: 'b7ad6b7169203331',
        traceFlags: 1,
        traceState: undefined,
      }),
      parentSpanContext: {
        traceId: '0af7651916cd43dd8448eb211c80319c',
        spanId: '00f067aa0ba902b7',
        traceFlags: 1,
        isRemote: true,
      },
      startTime: start,
      endTime: [start[0] + 1, 0],
      status: { code: 2, message: 'bad' },
      attributes: { 'db.operation.name': 'GET', 'client.port': 40123 },
      links: [],
      events: [],
      duration: [1, 0],
      ended: true,
      resource: resourceFromAttributes({ 'service.name': 'x' }),
      instrumentationScope: { name: 'tcpool', version: '1' },
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    },
  ] as unknown as Parameters<typeof ProtobufTraceSerializer.serializeRequest>[0])!;
  const request = decode(bytes) as {
    resourceSpans: { resource: unknown; scopeSpans: { scope: unknown }[] }[];
  };
  const [span] = spansIn(request);
  assert.equal(hex(span.traceId), '0af7651916cd43dd8448eb211c80319c');
  assert.equal(hex(span.spanId), 'b7ad6b7169203331');
  assert.equal(hex(span.parentSpanId), '00f067aa0ba902b7');
  assert.equal(span.flags, 0x301);
  assert.equal(span.kind, 2);
  assert.equal(span.name, 'GET');
  assert.equal(span.startTimeUnixNano, '1790000000123456789');
  assert.equal(span.endTimeUnixNano, '1790000001000000000');
  assert.deepEqual(span.status, { code: 2, message: 'bad' });
  assert.deepEqual(span.attributes, [
    { key: 'db.operation.name', value: { stringValue: 'GET' } },
    { key: 'client.port', value: { intValue: '40123' } },
  ]);
  assert.deepEqual(request.resourceSpans[0].scopeSpans[0].scope, { name: 'tcpool', version: '1' });
});

test('the envelope: resource attributes of every type, and the scope', () => {
  const batch = new SpanBatch();
  batch.add(
    null,
    1,
    2,
    protobuf.spanTail('PING', protobuf.clientAttributes('line', 'tcp', '127.0.0.1', 1), null),
  );
  const request = decode(batch.encode(proto, randomBytes(24)).bytes) as {
    resourceSpans: { resource: { attributes: unknown }; scopeSpans: { scope: unknown }[] }[];
  };
  assert.deepEqual(request.resourceSpans[0].resource.attributes, [
    { key: 'service.name', value: { stringValue: 'tcpool' } },
    { key: 'tcpool.worker', value: { intValue: '3' } },
    { key: 'ratio', value: { doubleValue: 0.5 } },
    { key: 'on', value: { boolValue: true } },
    { key: 'negative', value: { intValue: '-7' } },
    {
      key: 'list',
      value: { arrayValue: { values: [{ stringValue: 'a' }, { intValue: '1' }] } },
    },
    { key: 'map', value: { kvlistValue: { values: [{ key: 'k', value: { stringValue: 'v' } }] } } },
  ]);
  assert.deepEqual(request.resourceSpans[0].scopeSpans[0].scope, scope);
});

test('a root span, a child of a remote parent with tracestate, an error span; all-zero ids', () => {
  const attrs = protobuf.clientAttributes('resp3', 'websocket', '::1', 40123);
  const parent = protobuf.parent(
    '0af7651916cd43dd8448eb211c80319c',
    'b7ad6b7169203331',
    'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
  );
  const batch = new SpanBatch();
  batch.add(null, 1000.25, 1000.5, protobuf.spanTail('PING', attrs, null));
  batch.add(parent, 5, 6, protobuf.spanTail('ECHO', attrs, null));
  const error = { code: 'ERR_WRONG_ARITY', message: 'wrong number of arguments for "ECHO" ünï' };
  batch.add(null, 7, 8, protobuf.spanTail('CAFÉ', attrs, error));
  const random = Uint8Array.from({ length: 72 }, (_, i) => (i * 37 + 5) & 0xff);
  random.fill(0, 48); // the third span's ids: all zeros
  const [root, child, failed] = spansIn(decode(batch.encode(proto, random).bytes));
  assert.equal(hex(root.traceId), hex([...random.subarray(0, 16)]));
  assert.equal(hex(root.spanId), hex([...random.subarray(16, 24)]));
  assert.equal(root.parentSpanId, undefined);
  assert.equal(root.flags, 0x101);
  assert.equal(root.kind, 2);
  assert.equal(root.status, undefined); // unset
  assert.equal(BigInt(root.endTimeUnixNano) - BigInt(root.startTimeUnixNano), 250_000n);
  assert.deepEqual(root.attributes, [
    { key: 'db.operation.name', value: { stringValue: 'PING' } },
    { key: 'db.system.name', value: { stringValue: 'tcpool' } },
    { key: 'network.protocol.name', value: { stringValue: 'resp3' } },
    { key: 'network.transport', value: { stringValue: 'tcp' } },
    { key: 'tcpool.transport', value: { stringValue: 'websocket' } },
    { key: 'client.address', value: { stringValue: '::1' } },
    { key: 'client.port', value: { intValue: '40123' } },
  ]);
  assert.equal(hex(child.traceId), '0af7651916cd43dd8448eb211c80319c');
  assert.equal(hex(child.spanId), hex([...random.subarray(40, 48)]));
  assert.equal(hex(child.parentSpanId), 'b7ad6b7169203331');
  assert.equal(child.traceState, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
  assert.equal(child.flags, 0x301);
  assert.equal(failed.name, 'CAFÉ');
  assert.deepEqual(failed.status, { code: 2, message: error.message });
  assert.deepEqual(
    failed.attributes.slice(-2).map((a) => [a.key, a.value.stringValue]),
    [
      ['error.type', 'ERR_WRONG_ARITY'],
      ['db.response.status_code', 'ERR_WRONG_ARITY'],
    ],
  );
  assert.match(hex(failed.traceId)!, /^0{31}1$/);
  assert.match(hex(failed.spanId)!, /^0{15}1$/);
});

test('times: Unix nanoseconds to the microsecond, across the 2^32 boundary of the low half', () => {
  const reference = (now: number): bigint =>
    BigInt(Math.round(performance.timeOrigin * 1000)) * 1000n + BigInt(Math.round(now * 1e6));
  const tail = protobuf.spanTail('T', protobuf.clientAttributes('line', 'tcp', '::1', 1), null);
  fc.assert(
    fc.property(
      fc.double({ min: 0, max: 1e10, noNaN: true }),
      fc.double({ min: 0, max: 1e6, noNaN: true }),
      (start, duration) => {
        const batch = new SpanBatch(1);
        batch.add(null, start, start + duration, tail);
        const [span] = spansIn(decode(batch.encode(proto, randomBytes(24)).bytes));
        for (const [text, now] of [
          [span.startTimeUnixNano, start],
          [span.endTimeUnixNano, start + duration],
        ] as const) {
          const diff = BigInt(text) - reference(now);
          assert.ok(diff >= -1000n && diff <= 1000n, `${text} vs ${reference(now)}`);
        }
      },
    ),
    { numRuns: 500 },
  );
});

/** A batch of spans as fast-check draws them, recorded in one encoding. */
interface Drawn {
  name: string;
  protocol: string;
  address: string;
  port: number;
  parent: { traceId: string; spanId: string; state: string } | null;
  error: { code: string; message: string } | null;
  start: number;
  duration: number;
}
function record(encoding: SpanEncoding, spans: Drawn[]): SpanBatch {
  const batch = new SpanBatch(1);
  for (const s of spans) {
    const attrs = encoding.clientAttributes(s.protocol, 'tcp', s.address, s.port);
    const parent: EncodedParent | null =
      s.parent === null ? null : encoding.parent(s.parent.traceId, s.parent.spanId, s.parent.state);
    batch.add(parent, s.start, s.start + s.duration, encoding.spanTail(s.name, attrs, s.error));
  }
  return batch;
}

test('any batch decodes to what the OTLP/JSON encoding of the same spans says (property)', () => {
  const hexId = (bytes: number) =>
    fc
      .uint8Array({ minLength: bytes, maxLength: bytes })
      .map((b) => Buffer.from(b).toString('hex'));
  const drawn = fc.record<Drawn>({
    name: fc.string({ unit: 'grapheme', maxLength: 40 }),
    protocol: fc.constantFrom('line', 'resp2', 'resp3', 'json'),
    address: fc.oneof(fc.ipV4(), fc.ipV6()),
    port: fc.integer({ min: 0, max: 65535 }),
    parent: fc.option(
      fc.record({
        traceId: hexId(16),
        spanId: hexId(8),
        state: fc.constantFrom('', 'rojo=00f067aa0ba902b7', 'a=1,b=2'),
      }),
    ),
    error: fc.option(
      fc.record({
        code: fc.string({ maxLength: 20 }),
        message: fc.string({ unit: 'binary', maxLength: 300 }),
      }),
    ),
    start: fc.double({ min: 0, max: 1e9, noNaN: true }),
    duration: fc.double({ min: 0, max: 1e5, noNaN: true }),
  });
  const jsonEnv = json.envelope(resource, scope);
  fc.assert(
    fc.property(fc.array(drawn, { minLength: 1, maxLength: 40 }), (spans) => {
      const random = randomBytes(24 * spans.length);
      const fromProto = spansIn(decode(record(protobuf, spans).encode(proto, random).bytes));
      const fromJson = (
        JSON.parse(record(json, spans).encode(jsonEnv, random).bytes.toString()) as {
          resourceSpans: { scopeSpans: { spans: Record<string, unknown>[] }[] }[];
        }
      ).resourceSpans[0].scopeSpans[0].spans;
      assert.deepEqual(fromProto.map(asJson), fromJson);
    }),
    { numRuns: 300 },
  );
});

test('a reused buffer is written over when large enough; a larger batch gets a new one', () => {
  const tail = protobuf.spanTail('ECHO', protobuf.clientAttributes('line', 'tcp', '::1', 2), null);
  const big = new SpanBatch();
  for (let i = 0; i < 1000; i++) big.add(null, i, i + 1, tail);
  const first = big.encode(proto, randomBytes(24 * 1000), null, 1024);
  assert.equal(spansIn(decode(first.bytes)).length, 1000);
  assert.ok(first.bytes.length > 200_000, `${first.bytes.length} bytes`);
  const small = new SpanBatch();
  small.add(null, 1, 2, tail);
  const again = small.encode(proto, randomBytes(24), first.buffer);
  assert.equal(again.buffer, first.buffer);
  assert.equal(spansIn(decode(again.bytes)).length, 1);
  const grown = big.encode(proto, randomBytes(24 * 1000), Buffer.allocUnsafeSlow(10));
  assert.equal(spansIn(decode(grown.bytes)).length, 1000);
});
