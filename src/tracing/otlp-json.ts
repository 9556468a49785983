// The OTLP/JSON encoding of tcpool's spans (opentelemetry-proto, JSON mapping: ids in hex, 64-bit
// times as decimal strings, enums as numbers), socket-free. Hand-written because the SDK's path
// cost ~14–20 µs a span on the worker's event loop (its Span object, its batch processor and the
// generic otlp-transformer), which made 1 % sampling cost 20–44 % CPU at P=16 in compare.sh.
// Here a command's span is a record of four values (SpanBatch.add()); a batch is encoded as
// bytes in one pass when it is exported (SpanBatch.encode()): the ids from random bytes, the
// times as digits, then the bytes a client's spans of one command name share (spanTail()). One
// pass over a batch keeps those tails and the body in the CPU's caches; writing each span as its
// command ended cost more in the server, where every span found them cold (docs/PERFORMANCE.md,
// "Tracing").
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

/** A parent's ids (hex, as W3C traceparent has them) and tracestate ('' for none). */
export function encodeParent(traceId: string, spanId: string, traceState: string): EncodedParent {
  const state = traceState === '' ? '' : `,"traceState":${JSON.stringify(traceState)}`;
  return {
    traceId: Buffer.from(traceId, 'latin1'),
    fields: Buffer.from(`,"parentSpanId":"${spanId}"${state}`),
  };
}

/**
 * The end of a span object: its name, kind (SERVER, 2), attributes (db.operation.name and the
 * client's, clientAttributes()) and status: an error reply's code and message make it an error
 * span (error.type, db.response.status_code), else the status is unset.
 */
export function spanTail(name: string, clientAttributes: Buffer, error: SpanError | null): Buffer {
  const clientAttributesJson = clientAttributes.toString();
  const nameJson = JSON.stringify(name);
  const head = `,"name":${nameJson},"kind":2,"attributes":[${attr('db.operation.name', nameJson)},${clientAttributesJson}`;
  if (error === null) return Buffer.from(`${head}],"status":{}}`);
  const code = JSON.stringify(error.code);
  return Buffer.from(
    `${head},${attr('error.type', code)},${attr('db.response.status_code', code)}],"status":{"code":2,"message":${JSON.stringify(error.message)}}}`,
  );
}

/** The attributes every span of one client carries (span-batch.ts's clientAttributeEntries). */
export function clientAttributes(
  protocol: string,
  transport: string,
  address: string,
  port: number,
): Buffer {
  const attributes = clientAttributeEntries(protocol, transport, address, port).map(([key, v]) =>
    typeof v === 'number'
      ? `{"key":"${key}","value":{"intValue":${v}}}`
      : attr(key, JSON.stringify(v)),
  );
  return Buffer.from(attributes.join(','));
}

function attr(key: string, stringJson: string): string {
  return `{"key":"${key}","value":{"stringValue":${stringJson}}}`;
}

/** An attribute value as OTLP's AnyValue (resource attributes: any JSON-able value). */
export function anyValue(v: unknown): unknown {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  // As otlp-proto.ts: an integer a double holds exactly is an int64, any other number a double
  // (NaN and the infinities as the protobuf JSON mapping writes them), a bigint outside int64
  // its decimal digits as a string.
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return { intValue: v };
    return { doubleValue: Number.isFinite(v) ? v : String(v) };
  }
  if (typeof v === 'bigint')
    return isInt64(v) ? { intValue: v.toString() } : { stringValue: v.toString() };
  if (v instanceof Uint8Array) return { bytesValue: Buffer.from(v).toString('base64') };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(anyValue) } };
  if (v !== null && typeof v === 'object')
    return {
      kvlistValue: {
        values: Object.entries(v).map(([key, value]) => ({ key, value: anyValue(value) })),
      },
    };
  return {};
}

/** The request body around the spans: what comes before the first and after the last. */
export interface JsonEnvelope extends Envelope {
  head: Buffer;
  tail: Buffer;
}

/** The envelope of every request: the resource and scope, encoded once at start-up. */
export function envelope(
  resource: Record<string, unknown>,
  scope: { name: string; version: string },
): JsonEnvelope {
  const attributes = resourceEntries(resource).map(([key, value]) => ({
    key,
    value: anyValue(value),
  }));
  const head = `{"resourceSpans":[{"resource":${JSON.stringify({ attributes, droppedAttributesCount: 0 })},"scopeSpans":[{"scope":${JSON.stringify(scope)},"spans":[`;
  const env: JsonEnvelope = {
    head: Buffer.from(head),
    tail: Buffer.from(']}]}]}'),
    encode: (batch, random, reuse, capacity) => encodeBatch(env, batch, random, reuse, capacity),
  };
  return env;
}

/** The OTLP/JSON encoding (OTEL_EXPORTER_OTLP_PROTOCOL=http/json). */
export const json: SpanEncoding = {
  protocol: 'http/json',
  contentType: 'application/json',
  parent: encodeParent,
  clientAttributes,
  spanTail,
  envelope,
};

const HEX = Buffer.from('0123456789abcdef', 'latin1');
const TRACE_ID = Buffer.from('{"traceId":"');
const SPAN_ID = Buffer.from('","spanId":"');
// The W3C trace flags (sampled) with OTLP's "has is_remote" bit (0x100), and "is remote"
// (0x200) when the parent came from another process.
const ROOT_FLAGS = Buffer.from('","flags":257,"startTimeUnixNano":"');
const REMOTE_PARENT_FLAGS = Buffer.from('","flags":769,"startTimeUnixNano":"');
const END_TIME = Buffer.from('","endTimeUnixNano":"');
/** The longest a span's own part can be: ids, flags, two times (the tail and parent apart). */
const SPAN_HEAD_MAX = 176;

/** A batch's request body: the envelope and every span, with ids from `random`. */
function encodeBatch(
  env: JsonEnvelope,
  batch: SpanBatch,
  random: Uint8Array,
  reuse: Buffer | null,
  capacity: number,
): RequestBody {
  const body = new RequestBody(env, reuse, capacity);
  const { parents, tails, times, count } = batch;
  for (let i = 0; i < count; i++) {
    const parent = parents[i];
    // A child span takes its trace id from the parent: only the span id is random.
    body.addSpan(
      random,
      parent === null ? 24 * i : 24 * i + 16,
      parent,
      times[2 * i],
      times[2 * i + 1],
      tails[i],
    );
  }
  body.finish();
  return body;
}

/** One export request's body: the envelope's head, each span, and the envelope's tail. */
export class RequestBody implements EncodedBody {
  /** Spans written. */
  count = 0;
  private buf: Buffer;
  private length = 0;
  private readonly env: JsonEnvelope;

  /** `reuse`: the buffer of a body that was sent, to write into again (else a new one). */
  constructor(env: JsonEnvelope, reuse: Buffer | null = null, capacity = 64 * 1024) {
    this.env = env;
    // Never from Node's shared pool (under 4 KiB): the memory may be transferred to a thread.
    this.buf = reuse ?? Buffer.allocUnsafeSlow(Math.max(capacity, 8192));
    this.put(env.head);
  }

  /** The memory the body is written in (to reuse once the body was sent). */
  get buffer(): Buffer {
    return this.buf;
  }

  /**
   * Appends one span of kind SERVER. `random` holds its random ids at `at`: 24 bytes for a root
   * span (trace id, then span id), 8 with a parent (the span id). Times are performance.now()
   * readings. `tail` is spanTail()'s.
   */
  addSpan(
    random: Uint8Array,
    at: number,
    parent: EncodedParent | null,
    start: number,
    end: number,
    tail: Buffer,
  ): void {
    this.reserve(SPAN_HEAD_MAX + (parent === null ? 0 : parent.fields.length) + tail.length);
    if (this.count > 0) this.buf[this.length++] = 0x2c; // ','
    this.put(TRACE_ID);
    if (parent === null) {
      this.hex(random, at, 16);
      at += 16;
    } else this.put(parent.traceId);
    this.put(SPAN_ID);
    this.hex(random, at, 8);
    this.put(parent === null ? ROOT_FLAGS : REMOTE_PARENT_FLAGS);
    this.time(start);
    this.put(END_TIME);
    this.time(end);
    this.buf[this.length++] = 0x22; // '"'
    if (parent !== null) this.put(parent.fields);
    this.put(tail);
    this.count++;
  }

  /** Closes the envelope: `bytes` is then the whole body. The object is not written to again. */
  finish(): Buffer {
    this.put(this.env.tail);
    return this.bytes;
  }

  /** What was written. */
  get bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  /** `n` bytes as hex digits; all zeros (invalid, W3C) become …01: 2^-64 at worst. */
  private hex(bytes: Uint8Array, at: number, n: number): void {
    const buf = this.buf;
    let o = this.length;
    let any = 0;
    for (let i = at; i < at + n; i++) {
      const b = bytes[i];
      any |= b;
      buf[o++] = HEX[b >> 4];
      buf[o++] = HEX[b & 15];
    }
    if (any === 0) buf[o - 1] = 0x31;
    this.length = o;
  }

  /** A performance.now() reading as Unix nanoseconds: decimal digits. */
  private time(now: number): void {
    unixTime(now);
    if (unix.seconds !== cachedSeconds) {
      cachedSeconds = unix.seconds;
      cachedSecondsDigits = Buffer.from(String(unix.seconds), 'latin1');
    }
    this.put(cachedSecondsDigits);
    // Nine digits, zero-padded (nanos < 2^31: integer division).
    let nanos = unix.nanos;
    const buf = this.buf;
    let o = this.length + 9;
    this.length = o;
    for (let i = 0; i < 9; i++) {
      const q = (nanos / 10) | 0;
      buf[--o] = 0x30 + nanos - q * 10;
      nanos = q;
    }
  }

  private put(bytes: Buffer): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(grown, 0, 0, this.length);
    this.buf = grown;
  }
}

/** The seconds of the last time written, and their digits (they change once a second). */
let cachedSeconds = -1;
let cachedSecondsDigits = Buffer.alloc(0);
