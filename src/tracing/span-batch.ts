// What both OTLP encodings share (otlp-proto.ts, the default, and otlp-json.ts): a command's span
// as a record of four values (SpanBatch), the interface an encoding implements, and the clock
// (performance.now() readings as Unix seconds and nanoseconds). Everything here is socket-free.
import { performance } from 'node:perf_hooks';

/** The parent a client named, encoded once when it arrives (SpanEncoding.parent()). */
export interface EncodedParent {
  /** The trace id, as the encoding writes it (32 hex digits in JSON, 16 bytes in protobuf). */
  readonly traceId: Buffer;
  /** The parent span id and, if the client sent one, the tracestate: encoded fields. */
  readonly fields: Buffer;
}

/** A reply that makes a span an error span: its code and message. */
export interface SpanError {
  code: string;
  message: string;
}

/** One export request's body, written: `bytes` within the memory `buffer`, `count` spans. */
export interface EncodedBody {
  readonly buffer: Buffer;
  readonly bytes: Buffer;
  readonly count: number;
}

/** The request around the spans (resource and scope, encoded once), which writes a batch. */
export interface Envelope {
  /**
   * The request body of `batch`, with ids from `random` (24 bytes a span: trace id, span id).
   * `reuse`: the memory of a body that was sent, to write into again; else a new buffer of at
   * least `capacity` bytes.
   */
  encode(batch: SpanBatch, random: Uint8Array, reuse: Buffer | null, capacity: number): EncodedBody;
}

/** An OTLP encoding of tcpool's spans (OTEL_EXPORTER_OTLP_PROTOCOL). */
export interface SpanEncoding {
  /** OTEL_EXPORTER_OTLP_PROTOCOL's name for it. */
  readonly protocol: 'http/protobuf' | 'http/json';
  /** The request's Content-Type. */
  readonly contentType: string;
  /** A parent's ids (hex, as W3C traceparent has them) and tracestate ('' for none). */
  parent(traceId: string, spanId: string, traceState: string): EncodedParent;
  /** The attributes every span of one client carries (semantic conventions for database calls). */
  clientAttributes(protocol: string, transport: string, address: string, port: number): Buffer;
  /**
   * The part of a span its client's commands of one name share: name, kind (SERVER), attributes
   * (db.operation.name and the client's) and status: an error reply makes it an error span
   * (error.type, db.response.status_code), else the status is unset.
   */
  spanTail(name: string, clientAttributes: Buffer, error: SpanError | null): Buffer;
  /** The envelope of every request: the resource's attributes and the scope. */
  envelope(resource: Record<string, unknown>, scope: { name: string; version: string }): Envelope;
}

/**
 * The spans of one export request, as recorded when their commands ended. A batch is reused once
 * it is encoded (clear()): its arrays keep their room, so recording allocates nothing, and no
 * batch lives long enough to be promoted to the old generation and left there as garbage.
 */
export class SpanBatch {
  /** Each span's tail (SpanEncoding.spanTail()); the first `count` are this batch's. */
  readonly tails: Buffer[];
  /** Each span's parent, or null for a root span. */
  readonly parents: (EncodedParent | null)[];
  /** Each span's start and end (performance.now()), two numbers a span. */
  times: Float64Array;
  /** Spans recorded. */
  count = 0;

  constructor(capacity = 512) {
    this.tails = new Array<Buffer>(capacity);
    this.parents = new Array<EncodedParent | null>(capacity);
    this.times = new Float64Array(2 * capacity);
  }

  /** Records one span: its parent (or null), start and end (performance.now()) and tail. */
  add(parent: EncodedParent | null, start: number, end: number, tail: Buffer): void {
    const i = this.count++;
    if (2 * i + 2 > this.times.length) {
      const grown = new Float64Array(this.times.length * 2);
      grown.set(this.times);
      this.times = grown;
    }
    this.times[2 * i] = start;
    this.times[2 * i + 1] = end;
    this.parents[i] = parent;
    this.tails[i] = tail;
  }

  /** Empties the batch for reuse (once its body is encoded). */
  clear(): void {
    this.count = 0;
  }

  /** The request body (Envelope.encode()). */
  encode(
    env: Envelope,
    random: Uint8Array,
    reuse: Buffer | null = null,
    capacity = 64 * 1024,
  ): EncodedBody {
    return env.encode(this, random, reuse, capacity);
  }
}

// performance.now() is relative to timeOrigin; its whole seconds are kept apart so that the
// nanoseconds keep their precision (a double holds Unix nanoseconds only to ~256 ns).
const originSeconds = Math.floor(performance.timeOrigin / 1000);
const originMs = performance.timeOrigin - originSeconds * 1000;

/** The last reading unixTime() split: Unix seconds, and nanoseconds within the second. */
export const unix = { seconds: 0, nanos: 0 };

/** Splits a performance.now() reading into `unix` (no allocation). */
export function unixTime(now: number): void {
  const ms = originMs + now;
  const seconds = Math.floor(ms / 1000);
  unix.seconds = originSeconds + seconds;
  unix.nanos = Math.min(999_999_999, Math.round((ms - seconds * 1000) * 1e6));
}

/** Whether a bigint fits OTLP's int64 (a resource attribute's value). */
export function isInt64(v: bigint): boolean {
  return v >= -(2n ** 63n) && v < 2n ** 63n;
}

/** A resource's attributes that have a value, in order (both envelopes write these). */
export function resourceEntries(resource: Record<string, unknown>): [string, unknown][] {
  return Object.entries(resource).filter(([, v]) => v !== undefined);
}

/**
 * The attributes every span of one client carries (the semantic conventions for database calls),
 * in order: both encodings write these.
 */
export function clientAttributeEntries(
  protocol: string,
  transport: string,
  address: string,
  port: number,
): [string, string | number][] {
  return [
    ['db.system.name', 'tcpool'],
    ['network.protocol.name', protocol],
    ['network.transport', 'tcp'],
    ['tcpool.transport', transport],
    ['client.address', address],
    ['client.port', Number.isInteger(port) ? port : 0],
  ];
}
