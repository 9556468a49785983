// Distributed tracing with OpenTelemetry: one span per command, with the semantic conventions'
// database-call attributes, exported by OTLP/HTTP (protobuf, or JSON:
// OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL). Only @opentelemetry/api is imported up
// front; the rest (@opentelemetry/core's W3C propagator, @opentelemetry/resources, and in the
// supervisor the OTLP exporter's HTTP delivery, exporter.ts) is loaded when TRACING is on, and
// configured by the standard OTEL_* variables (OTEL_EXPORTER_OTLP_*, OTEL_TRACES_SAMPLER[_ARG],
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*). The span itself and its encoding are
// tcpool's own (span-batch.ts, otlp-proto.ts, otlp-json.ts: the SDK's cost ~14–20 µs a span). With TRACING off the executor's
// only cost is the sampling countdown's decrement, which never reaches 0.
import { performance } from 'node:perf_hooks';
import {
  defaultTextMapGetter,
  isSpanContextValid,
  ROOT_CONTEXT,
  type TextMapPropagator,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import type { CommandSpec } from '../commands/registry.ts';
import { ReplyError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { LogThrottle } from '../log/throttle.ts';
import type { Reply } from '../protocol/reply.ts';
import { otlpHttpExporter, protocolFromEnv } from './exporter.ts';
import { json } from './otlp-json.ts';
import { protobuf } from './otlp-proto.ts';
import type { EncodedParent, SpanEncoding } from './span-batch.ts';
import { type ExportBatch, SpanQueue, type SpanQueueOptions } from './span-queue.ts';

/** The queue of finished spans while tracing is on; null otherwise. */
export let spans: SpanQueue | null = null;
/** The share of commands without a parent that are traced (OTEL_TRACES_SAMPLER[_ARG]). */
let ratio = 1;
/** A parent's sampled flag decides for its children (the parentbased_* samplers). */
let parentBased = true;
let propagator: TextMapPropagator | null = null;
/** How spans are written (OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL). */
let encoding: SpanEncoding = protobuf;

/** What became of a span, as the trace_spans_* counters say. */
export type SpanOutcome = 'exported' | 'dropped' | 'failed';

/** The parent span a client named (W3C traceparent and tracestate). */
export interface TraceParent {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
  /** tracestate as received, '' for none. */
  readonly traceState: string;
  /** The same, encoded for the spans it parents. */
  readonly encoded: EncodedParent;
}

/** What a span says about the client it serves. */
export interface TracedClient {
  readonly peer: string;
  readonly protocol: string;
  readonly transport: string;
  /** The trace context the client sent (HTTP or WebSocket traceparent), else null. */
  readonly traceContext: TraceParent | null;
}

/**
 * The sampling countdown: commands without a deciding parent until the next one sampled. Every
 * command decrements it (untraced()); sampled() is asked only when it reaches 0 or the client
 * named a parent. An unsampled command costs a decrement whether tracing is on or off (Infinity
 * then), so the request path is the same code either way. The gaps are drawn from a geometric
 * distribution: the same as one draw of the ratio per command.
 */
export const sampler = { countdown: Number.POSITIVE_INFINITY };

/** The executor's one test per command: true when it runs without a span (small: inlined). */
export function untraced(client: TracedClient): boolean {
  return --sampler.countdown > 0 && client.traceContext === null;
}

/**
 * Whether the command untraced() let through is traced. With a parent and a parentbased_*
 * sampler, the parent's sampled flag decides, and the command gives back the count it took:
 * commands without a parent keep their ratio whatever the share of those with one.
 */
export function sampled(client: TracedClient): boolean {
  if (spans === null) {
    sampler.countdown = Number.POSITIVE_INFINITY;
    return false;
  }
  const parent = client.traceContext;
  if (parent !== null && parentBased) {
    sampler.countdown += 1;
    return parent.sampled;
  }
  if (sampler.countdown > 0) return false;
  sampler.countdown = gapToNextSample();
  return true;
}

/** Commands until the next sampled one, ≥ 1 (Infinity when the ratio is 0). */
function gapToNextSample(p = ratio): number {
  if (p >= 1) return 1;
  if (p <= 0) return Number.POSITIVE_INFINITY;
  return Math.floor(Math.log(1 - Math.random()) / Math.log1p(-p)) + 1;
}

const SAMPLERS = new Set(['always_on', 'always_off', 'traceidratio']);

/**
 * OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, as the ratio and parent rule applied above.
 * An unknown sampler or a ratio outside 0..1 is named in a warning and replaced by the
 * specification's default (parentbased_always_on; a ratio of 1); an empty value is unset.
 */
export function samplerFromEnv(warn: (message: string) => void): void {
  const name =
    (process.env.OTEL_TRACES_SAMPLER ?? '').trim().toLowerCase() || 'parentbased_always_on';
  parentBased = name.startsWith('parentbased_');
  let kind = parentBased ? name.slice('parentbased_'.length) : name;
  if (!SAMPLERS.has(kind)) {
    warn(
      `Tracing: OTEL_TRACES_SAMPLER=${JSON.stringify(process.env.OTEL_TRACES_SAMPLER)} is not one of always_on, always_off, traceidratio (or parentbased_ of them); using parentbased_always_on`,
    );
    parentBased = true;
    kind = 'always_on';
  }
  ratio = kind === 'always_off' ? 0 : 1;
  if (kind !== 'traceidratio') return;
  const text = (process.env.OTEL_TRACES_SAMPLER_ARG ?? '').trim();
  const arg = text === '' ? 1 : Number(text);
  if (Number.isFinite(arg) && arg >= 0 && arg <= 1) ratio = arg;
  else
    warn(
      `Tracing: OTEL_TRACES_SAMPLER_ARG=${JSON.stringify(text)} is not a ratio from 0 to 1; using 1`,
    );
}

/** The batch processor's OTEL_BSP_* settings; a value that is not a positive integer is named. */
export function queueOptionsFromEnv(warn: (message: string) => void): SpanQueueOptions {
  const read = (key: string, fallback: number): number => {
    const text = process.env[key];
    if (text === undefined || text.trim() === '') return fallback;
    const n = Number(text);
    if (Number.isInteger(n) && n > 0) return n;
    warn(`Tracing: ${key}=${JSON.stringify(text)} is not a positive integer; using ${fallback}`);
    return fallback;
  };
  const maxQueueSize = read('OTEL_BSP_MAX_QUEUE_SIZE', 2048);
  let maxExportBatchSize = read('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512);
  if (maxExportBatchSize > maxQueueSize) {
    warn(
      `Tracing: OTEL_BSP_MAX_EXPORT_BATCH_SIZE=${maxExportBatchSize} exceeds OTEL_BSP_MAX_QUEUE_SIZE=${maxQueueSize}; using ${maxQueueSize}`,
    );
    maxExportBatchSize = maxQueueSize;
  }
  return {
    maxQueueSize,
    maxExportBatchSize,
    scheduleDelayMs: read('OTEL_BSP_SCHEDULE_DELAY', 5000),
    exportTimeoutMs: read('OTEL_BSP_EXPORT_TIMEOUT', 30000),
  };
}

/**
 * Starts tracing in this thread: the resource (service.name tcpool unless OTEL_SERVICE_NAME or
 * OTEL_RESOURCE_ATTRIBUTES say otherwise, service.version, tcpool.worker) and the queue. `send`
 * delivers its batches (a worker's hands them to the supervisor's exporter); without it, this
 * thread loads an OTLP/HTTP exporter of its own. `count` hears what became of the spans (the
 * worker's trace_spans_* counters). Returns what sends the last spans and stops it
 * (at shutdown), waiting for the collector at most `timeoutMs`.
 */
export async function startTracing(
  version: string,
  workerId: number,
  logger: Logger,
  send?: ExportBatch,
  count: (outcome: SpanOutcome, spans: number) => void = () => {},
): Promise<(timeoutMs?: number) => Promise<void>> {
  const [core, resources] = await Promise.all([
    import('@opentelemetry/core'),
    import('@opentelemetry/resources'),
  ]);
  const protocol = protocolFromEnv((m) => logger.warn(m));
  encoding = protocol === 'http/json' ? json : protobuf;
  const own = send === undefined ? await otlpHttpExporter(30, protocol) : null;
  samplerFromEnv((m) => logger.warn(m));
  sampler.countdown = gapToNextSample();
  propagator = new core.W3CTraceContextPropagator();
  const resource = resources
    .defaultResource()
    .merge(
      resources.resourceFromAttributes({
        'service.name': 'tcpool',
        'service.version': version,
        'tcpool.worker': workerId,
      }),
    )
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  await resource.waitForAsyncAttributes?.();
  const throttle = new LogThrottle(logger, 60_000);
  const queue = new SpanQueue(
    queueOptionsFromEnv((m) => logger.warn(m)),
    encoding.envelope(resource.attributes, { name: 'tcpool', version }),
    send ?? own!.send,
    {
      exported: (n) => count('exported', n),
      dropped: (total, max) => {
        count('dropped', 1);
        throttle.warn(
          'Tracing: spans dropped',
          `Tracing: spans dropped: the queue is full (OTEL_BSP_MAX_QUEUE_SIZE=${max}); ${total} so far`,
        );
      },
      failed: (n, error) => {
        count('failed', n);
        throttle.warn(
          'Tracing: export failed',
          `Tracing: ${n} spans not exported: ${error.message}`,
        );
      },
    },
  );
  spans = queue;
  return async (timeoutMs = Number.POSITIVE_INFINITY) => {
    spans = null;
    sampler.countdown = Number.POSITIVE_INFINITY;
    if (!(await queue.shutdown(timeoutMs)))
      logger.warn(
        `Tracing: ${queue.unsent} spans not sent: the collector had not answered within the shutdown's ${timeoutMs} ms`,
      );
    await own?.shutdown();
  };
}

/** The parent a client's headers name (W3C traceparent/tracestate), or null. */
export function traceContextFrom(
  headers: Record<string, string | string[] | undefined>,
): TraceParent | null {
  if (propagator === null || spans === null || headers.traceparent === undefined) return null;
  const context = trace.getSpanContext(
    propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter),
  );
  if (context === undefined || !isSpanContextValid(context)) return null;
  const traceState = context.traceState?.serialize() ?? '';
  return {
    traceId: context.traceId,
    spanId: context.spanId,
    sampled: (context.traceFlags & TraceFlags.SAMPLED) !== 0,
    traceState,
    encoded: encoding.parent(context.traceId, context.spanId, traceState),
  };
}

/**
 * A client's attributes, encoded once (again if its protocol or peer changes), and the tail of
 * its spans for each command name that succeeded (spanTail()).
 */
interface ClientSpans {
  encoding: SpanEncoding;
  protocol: string;
  peer: string;
  attributes: Buffer;
  tails: Map<string, Buffer>;
}
const clients = new WeakMap<TracedClient, ClientSpans>();

/** The start of a command's span: the time (a span is only built when it ends). */
export function spanStart(): number {
  return performance.now();
}

/**
 * Ends a command's span with its outcome (an error reply is an error span with its code, a
 * throw one without a status) and queues it. A no-op once tracing has stopped.
 */
export function endCommandSpan(
  client: TracedClient,
  spec: CommandSpec,
  start: number,
  reply: Reply | undefined,
): void {
  const queue = spans;
  if (queue === null) return;
  const end = performance.now();
  let known = clients.get(client);
  if (
    known === undefined ||
    known.protocol !== client.protocol ||
    known.peer !== client.peer ||
    known.encoding !== encoding
  ) {
    const [address, port] = splitPeer(client.peer);
    known = {
      encoding,
      protocol: client.protocol,
      peer: client.peer,
      attributes: encoding.clientAttributes(client.protocol, client.transport, address, port),
      tails: new Map(),
    };
    clients.set(client, known);
  }
  let tail: Buffer | undefined;
  if (reply instanceof ReplyError)
    tail = encoding.spanTail(spec.name, known.attributes, {
      code: reply.code,
      message: reply.message,
    });
  else {
    tail = known.tails.get(spec.name);
    if (tail === undefined) {
      tail = encoding.spanTail(spec.name, known.attributes, null);
      known.tails.set(spec.name, tail);
    }
  }
  const parent = client.traceContext;
  queue.add(parent === null ? null : parent.encoded, start, end, tail);
}

function splitPeer(peer: string): [string, number] {
  const colon = peer.lastIndexOf(':');
  const host = peer.slice(0, colon);
  return [host.startsWith('[') ? host.slice(1, -1) : host, Number(peer.slice(colon + 1))];
}
