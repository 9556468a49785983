// The OTLP/protobuf encoding of tcpool's spans (opentelemetry-proto's ExportTraceServiceRequest,
// OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, the specification's default), socket-free and
// hand-written for the same reason as otlp-json.ts: a span is four values on the request path,
// and a batch is written in one pass when it is exported. A span is about 260 bytes here against
// 625 in JSON (npm run bench:spans; docs/PERFORMANCE.md, "Tracing"). Protobuf prefixes every message with its length, so a batch is sized first (every
// span's size is known from its parent and tail) and then written front to back, exactly.
import {
  type EncodedBody,
  type EncodedParent,
  type Envelope,
  type SpanBatch,
  type SpanEncoding,
  type SpanError,
  clientAttributeEntries,
  isInt64,
  resourceEntries,
  unix,
  unixTime,
} from './span-batch.ts';

// Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
const tag = (field: number, wire: number): number => (field << 3) | wire;

/** An unsigned integer (< 2^53) as a varint. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

/** Bytes a varint of `n` takes. */
function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

/** A length-delimited field: a string (UTF-8), bytes or an embedded message. */
function bytesField(field: number, value: string | Uint8Array): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  return Buffer.concat([Buffer.from([tag(field, 2), ...varint(bytes.length)]), bytes]);
}

/** An int64 as a varint (two's complement: a negative takes 10 bytes). */
function int64Field(field: number, value: bigint): Buffer {
  let v = BigInt.asUintN(64, value);
  const out = [tag(field, 0)];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

/** An attribute value as OTLP's AnyValue message (resource attributes: any JSON-able value). */
export function anyValue(v: unknown): Buffer {
  if (typeof v === 'string') return bytesField(1, v);
  if (typeof v === 'boolean') return Buffer.from([tag(2, 0), v ? 1 : 0]);
  if (typeof v === 'bigint') return isInt64(v) ? int64Field(3, v) : bytesField(1, v.toString());
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return int64Field(3, BigInt(v));
    const out = Buffer.alloc(9);
    out[0] = tag(4, 1);
    out.writeDoubleLE(v, 1);
    return out;
  }
  if (v instanceof Uint8Array) return bytesField(7, v);
  // ArrayValue and KeyValueList: `repeated AnyValue values = 1`, `repeated KeyValue values = 1`.
  if (Array.isArray(v))
    return bytesField(5, Buffer.concat(v.map((x) => bytesField(1, anyValue(x)))));
  if (v !== null && typeof v === 'object')
    return bytesField(
      6,
      Buffer.concat(Object.entries(v).map(([key, value]) => bytesField(1, keyValue(key, value)))),
    );
  return Buffer.alloc(0);
}

/** A KeyValue message: key = 1, value = 2. */
function keyValue(key: string, value: unknown): Buffer {
  return Buffer.concat([bytesField(1, key), bytesField(2, anyValue(value))]);
}

// Span fields: trace_id 1, span_id 2, trace_state 3, parent_span_id 4, name 5, kind 6,
// start_time_unix_nano 7, end_time_unix_nano 8, attributes 9, status 15, flags 16.
const SPAN_ATTRIBUTE = 9;

/** A span attribute: the KeyValue as field 9 of a Span. */
function spanAttribute(key: string, value: unknown): Buffer {
  return bytesField(SPAN_ATTRIBUTE, keyValue(key, value));
}

/** The parent's span id (field 4) and, if the client sent one, its tracestate (field 3). */
export function encodeParent(traceId: string, spanId: string, traceState: string): EncodedParent {
  return {
    traceId: Buffer.from(traceId, 'hex'),
    fields: Buffer.concat([
      bytesField(4, Buffer.from(spanId, 'hex')),
      traceState === '' ? Buffer.alloc(0) : bytesField(3, traceState),
    ]),
  };
}

/** The attributes every span of one client carries, as Span fields (clientAttributeEntries). */
export function clientAttributes(
  protocol: string,
  transport: string,
  address: string,
  port: number,
): Buffer {
  return Buffer.concat(
    clientAttributeEntries(protocol, transport, address, port).map(([key, v]) =>
      spanAttribute(key, v),
    ),
  );
}

/** Name, kind SERVER (2), attributes and, for an error reply, status ERROR (2) with its message. */
export function spanTail(name: string, clientAttributes: Buffer, error: SpanError | null): Buffer {
  const parts = [
    bytesField(5, name),
    Buffer.from([tag(6, 0), 2]),
    spanAttribute('db.operation.name', name),
    clientAttributes,
  ];
  if (error !== null)
    parts.push(
      spanAttribute('error.type', error.code),
      spanAttribute('db.response.status_code', error.code),
      // Status: message = 2, code = 3.
      bytesField(15, Buffer.concat([bytesField(2, error.message), Buffer.from([tag(3, 0), 2])])),
    );
  return Buffer.concat(parts);
}

/** The request's resource and scope, encoded once, before its spans. */
export interface ProtoEnvelope extends Envelope {
  /** ResourceSpans.resource (field 1): the Resource message with its tag and length. */
  readonly resource: Buffer;
  /** ScopeSpans.scope (field 1): the InstrumentationScope message with its tag and length. */
  readonly scope: Buffer;
}

export function envelope(
  resource: Record<string, unknown>,
  scope: { name: string; version: string },
): ProtoEnvelope {
  const attributes = resourceEntries(resource).map(([key, value]) =>
    bytesField(1, keyValue(key, value)),
  );
  const env: ProtoEnvelope = {
    resource: bytesField(1, Buffer.concat(attributes)),
    scope: bytesField(1, Buffer.concat([bytesField(1, scope.name), bytesField(2, scope.version)])),
    encode: (batch, random, reuse, capacity) => encodeBatch(env, batch, random, reuse, capacity),
  };
  return env;
}

/** The OTLP/protobuf encoding (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf). */
export const protobuf: SpanEncoding = {
  protocol: 'http/protobuf',
  contentType: 'application/x-protobuf',
  parent: encodeParent,
  clientAttributes,
  spanTail,
  envelope,
};

// A span's own fields: trace id (2 + 16), span id (2 + 8), two times (2 × (1 + 8)) and flags
// (2 + 4); its parent's fields and its tail apart.
const SPAN_OWN = 18 + 10 + 18 + 6;
const TRACE_ID = tag(1, 2);
const SPAN_ID = tag(2, 2);
const START = tag(7, 1);
const END = tag(8, 1);
// flags = 16, fixed32: the tag takes two bytes. The W3C flags (sampled) with OTLP's "has
// is_remote" bit (0x100), and "is remote" (0x200) when the parent came from another process.
const FLAGS_TAG_0 = (tag(16, 5) & 0x7f) | 0x80;
const FLAGS_TAG_1 = tag(16, 5) >> 7;
const ROOT_FLAGS = 0x101;
const REMOTE_PARENT_FLAGS = 0x301;

/** The written body of one request. */
class Body implements EncodedBody {
  readonly buffer: Buffer;
  readonly bytes: Buffer;
  readonly count: number;
  constructor(buffer: Buffer, length: number, count: number) {
    this.buffer = buffer;
    this.bytes = buffer.subarray(0, length);
    this.count = count;
  }
}

/**
 * ExportTraceServiceRequest { resource_spans = 1: ResourceSpans { resource = 1, scope_spans = 2:
 * ScopeSpans { scope = 1, spans = 2 … } } }, with ids from `random` (24 bytes a span).
 */
function encodeBatch(
  env: ProtoEnvelope,
  batch: SpanBatch,
  random: Uint8Array,
  reuse: Buffer | null,
  capacity: number,
): Body {
  const { parents, tails, times } = batch;
  const n = batch.count;
  let spansSize = 0;
  for (let i = 0; i < n; i++) {
    const size = spanSize(parents[i], tails[i]);
    spansSize += 1 + varintSize(size) + size;
  }
  const scopeSpans = env.scope.length + spansSize;
  const resourceSpans = env.resource.length + 1 + varintSize(scopeSpans) + scopeSpans;
  const total = 1 + varintSize(resourceSpans) + resourceSpans;
  // Never from Node's shared pool (under 4 KiB): the memory may be transferred to a thread.
  const buf =
    reuse !== null && reuse.length >= total
      ? reuse
      : Buffer.allocUnsafeSlow(Math.max(total, capacity, 8192));
  let o = 0;
  buf[o++] = tag(1, 2);
  o = putVarint(buf, o, resourceSpans);
  o += env.resource.copy(buf, o);
  buf[o++] = tag(2, 2);
  o = putVarint(buf, o, scopeSpans);
  o += env.scope.copy(buf, o);
  for (let i = 0; i < n; i++) {
    const parent = parents[i];
    const tail = tails[i];
    buf[o++] = tag(2, 2);
    o = putVarint(buf, o, spanSize(parent, tail));
    // A child span takes its trace id from the parent: only the span id is random.
    let at = parent === null ? 24 * i : 24 * i + 16;
    buf[o++] = TRACE_ID;
    buf[o++] = 16;
    if (parent === null) {
      o = putId(buf, o, random, at, 16);
      at += 16;
    } else o += parent.traceId.copy(buf, o);
    buf[o++] = SPAN_ID;
    buf[o++] = 8;
    o = putId(buf, o, random, at, 8);
    if (parent !== null) o += parent.fields.copy(buf, o);
    buf[o++] = START;
    o = putTime(buf, o, times[2 * i]);
    buf[o++] = END;
    o = putTime(buf, o, times[2 * i + 1]);
    buf[o++] = FLAGS_TAG_0;
    buf[o++] = FLAGS_TAG_1;
    buf.writeUInt32LE(parent === null ? ROOT_FLAGS : REMOTE_PARENT_FLAGS, o);
    o += 4;
    o += tail.copy(buf, o);
  }
  if (o !== total) throw new Error(`OTLP/protobuf: wrote ${o} bytes of ${total}`);
  return new Body(buf, total, n);
}

function spanSize(parent: EncodedParent | null, tail: Buffer): number {
  return SPAN_OWN + (parent === null ? 0 : parent.fields.length) + tail.length;
}

function putVarint(buf: Buffer, o: number, n: number): number {
  while (n >= 0x80) {
    buf[o++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[o++] = n;
  return o;
}

/** `n` random bytes as an id; all zeros (invalid, W3C) become …01: 2^-64 at worst. */
function putId(buf: Buffer, o: number, random: Uint8Array, at: number, n: number): number {
  let any = 0;
  for (let i = at; i < at + n; i++) {
    const b = random[i];
    any |= b;
    buf[o++] = b;
  }
  if (any === 0) buf[o - 1] = 1;
  return o;
}

/** A performance.now() reading as Unix nanoseconds: a little-endian fixed64. */
function putTime(buf: Buffer, o: number, now: number): number {
  unixTime(now);
  if (unix.seconds !== cachedSeconds) {
    cachedSeconds = unix.seconds;
    const ns = BigInt(unix.seconds) * 1_000_000_000n;
    cachedLow = Number(ns & 0xffffffffn);
    cachedHigh = Number(ns >> 32n);
  }
  let low = cachedLow + unix.nanos;
  let high = cachedHigh;
  if (low >= 0x1_0000_0000) {
    low -= 0x1_0000_0000;
    high++;
  }
  buf.writeUInt32LE(low, o);
  buf.writeUInt32LE(high, o + 4);
  return o + 8;
}

/** The seconds of the last time written, as nanoseconds in two 32-bit halves. */
let cachedSeconds = -1;
let cachedLow = 0;
let cachedHigh = 0;
