// The OTLP/HTTP delivery of encoded span batches, protobuf or JSON as
// OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL says (protocolFromEnv()), configured as OTLPTraceExporter
// is (OTEL_EXPORTER_OTLP_[TRACES_]*: endpoint, headers, timeout, compression). A plain http:
// collector without compression gets tcpool's transport (otlp-http.ts, with OpenTelemetry's
// retries and concurrency limit); anything else (https:, gzip) OpenTelemetry's own exporter, fed
// tcpool's ready-made request bodies. Either way a partial success is a WARN. It runs in the
// supervisor: workers hand it their batches (transferred, not copied), so no worker's event loop
// carries an HTTP client. Sending from the worker cost ~10 % CPU per request at P=16 in
// compare.sh; encoding the spans without sending them cost nothing measurable
// (docs/PERFORMANCE.md, "Tracing").
import { VERSION } from '../version.ts';
import { HttpTransport, retrying } from './otlp-http.ts';
import type { ExportBatch } from './span-queue.ts';

export interface SpanExporter {
  readonly send: ExportBatch;
  /** Waits for the exports under way, then closes the exporter's connections. */
  shutdown(): Promise<void>;
}

/** One OTLP/HTTP request: its body and how many spans it carries. */
interface ExportRequest {
  body: Buffer;
  spans: number;
}

/** The OTLP protocols tcpool sends (OTLP/gRPC is not among them). */
export type OtlpProtocol = 'http/protobuf' | 'http/json';

/**
 * OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf (the
 * specification's default) or http/json. Another value (grpc) is named in a warning and
 * replaced by http/protobuf.
 */
export function protocolFromEnv(warn: (message: string) => void = () => {}): OtlpProtocol {
  for (const key of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const text = process.env[key];
    if (text === undefined || text.trim() === '') continue;
    const value = text.trim().toLowerCase();
    if (value === 'http/protobuf' || value === 'http/json') return value;
    warn(
      `Tracing: ${key}=${JSON.stringify(text)} is not supported (tcpool exports by OTLP/HTTP: http/protobuf or http/json); using http/protobuf`,
    );
    return 'http/protobuf';
  }
  return 'http/protobuf';
}

/**
 * Loads the exporter (only when tracing is on) and makes one for request bodies of `protocol`
 * that lets `concurrency` exports run at once (the workers' in-flight exports together; the
 * OpenTelemetry default is 30). `warn` hears of spans a collector rejected (a partial success)
 * and of OpenTelemetry's own warnings.
 */
export async function otlpHttpExporter(
  concurrency = 30,
  protocol: OtlpProtocol = protocolFromEnv(),
  warn: (message: string) => void = () => {},
): Promise<SpanExporter> {
  const otlp = await import('@opentelemetry/otlp-exporter-base/node-http');
  const options = otlp.convertLegacyHttpOptions(
    { concurrencyLimit: concurrency },
    'TRACES',
    'v1/traces',
    { 'Content-Type': protocol === 'http/json' ? 'application/json' : 'application/x-protobuf' },
  );
  const url = new URL(options.url);
  // A plain-HTTP collector without compression gets tcpool's transport (otlp-http.ts): ~0.45 ms
  // of CPU an export against ~1 ms through OpenTelemetry's exporter (npm run bench:export). Anything else (https:, gzip) gets OpenTelemetry's exporter.
  if (url.protocol === 'http:' && options.compression === 'none')
    return plainHttpExporter(
      url,
      await options.headers(),
      options.timeoutMillis,
      concurrency,
      protocol,
      warn,
    );
  const transformer = await import('@opentelemetry/otlp-transformer');
  const serializer =
    protocol === 'http/json'
      ? transformer.JsonTraceSerializer
      : transformer.ProtobufTraceSerializer;
  // What OTLPTraceExporter (exporter-trace-otlp-http or -proto) builds, with a serialiser that
  // passes the body through. It reports a partial success (and its other warnings) through
  // OpenTelemetry's diag, which goes to `warn` here.
  const api = await import('@opentelemetry/api');
  const text = (args: unknown[]): string =>
    args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
  api.diag.setLogger(
    {
      error: (...args: unknown[]) => warn(`Tracing: ${text(args)}`),
      warn: (...args: unknown[]) => warn(`Tracing: ${text(args)}`),
      info: () => {},
      debug: () => {},
      verbose: () => {},
    },
    { logLevel: api.DiagLogLevel.WARN, suppressOverrideMessage: true },
  );
  const serialise = {
    serializeRequest: (request: ExportRequest) => request.body,
    // An empty or unreadable answer to a 2xx is taken as a full success.
    deserializeResponse: (data: Uint8Array) => {
      try {
        return serializer.deserializeResponse(data);
      } catch {
        return {};
      }
    },
  };
  const delegate = otlp.createOtlpHttpExportDelegate(
    options,
    serialise,
    'otlp_http_span_exporter',
    { name: 'span', countItems: (request: ExportRequest) => request.spans },
    undefined,
  );
  return {
    send: (body, spans, done) =>
      delegate.export({ body, spans }, (result) => done(result.code === 0, result.error)),
    shutdown: () => delegate.shutdown(),
  };
}

/** Exports by HttpTransport, with OpenTelemetry's retries, each within `timeoutMillis`. */
function plainHttpExporter(
  url: URL,
  headers: Record<string, string>,
  timeoutMillis: number,
  concurrency: number,
  protocol: OtlpProtocol,
  warn: (message: string) => void,
): SpanExporter {
  const transport = retrying(
    new HttpTransport(
      url,
      { ...headers, 'User-Agent': `tcpool/${VERSION} (OTLP exporter)` },
      concurrency,
    ),
  );
  const pending = new Set<Promise<void>>();
  return {
    send(body, spans, done) {
      // As OpenTelemetry's delegate: past the limit, refused at once.
      if (pending.size >= concurrency) {
        done(false, new Error('Concurrent export limit reached'));
        return;
      }
      const sent = transport.send(body, timeoutMillis).then((result) => {
        pending.delete(sent);
        if (result.status !== 'success') {
          done(
            false,
            result.error ?? new Error('the collector asked to retry after the export timeout'),
          );
          return;
        }
        const partial = partialSuccess(result.data, protocol);
        if (partial !== null)
          warn(
            `Tracing: the collector rejected ${partial.rejected} of ${spans} spans${partial.message === '' ? '' : `: ${partial.message}`}`,
          );
        done(true);
      });
      pending.add(sent);
    },
    async shutdown() {
      await Promise.all(pending);
      transport.shutdown();
    },
  };
}

/**
 * An ExportTraceServiceResponse's partial_success (1) { rejected_spans (1), error_message (2) },
 * protobuf or JSON; null when everything was accepted (or the answer cannot be read).
 */
export function partialSuccess(
  data: Uint8Array | undefined,
  protocol: OtlpProtocol,
): { rejected: number; message: string } | null {
  if (data === undefined || data.length === 0) return null;
  let rejected = 0;
  let message = '';
  try {
    if (protocol === 'http/json') {
      const p = (
        JSON.parse(Buffer.from(data).toString()) as { partialSuccess?: Record<string, unknown> }
      ).partialSuccess;
      rejected = Number(p?.rejectedSpans ?? 0);
      message = typeof p?.errorMessage === 'string' ? p.errorMessage : '';
    } else {
      const outer = field(data, 1);
      if (!(outer instanceof Uint8Array)) return null;
      const count = field(outer, 1);
      rejected = typeof count === 'number' ? count : 0;
      const text = field(outer, 2);
      message = text instanceof Uint8Array ? Buffer.from(text).toString() : '';
    }
  } catch {
    return null;
  }
  return rejected > 0 || message !== '' ? { rejected, message } : null;
}

/** The last value of protobuf field `n` in `bytes`: a varint, or the bytes of a length field. */
function field(bytes: Uint8Array, n: number): number | Uint8Array | null {
  let found: number | Uint8Array | null = null;
  let i = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 1; ; shift *= 128) {
      if (i >= bytes.length) throw new Error('truncated');
      const b = bytes[i++];
      value += (b & 0x7f) * shift;
      if (b < 0x80) return value;
    }
  };
  while (i < bytes.length) {
    const tag = varint();
    const wire = tag % 8;
    const number = Math.floor(tag / 8);
    let value: number | Uint8Array;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const length = varint();
      if (i + length > bytes.length) throw new Error('truncated');
      value = bytes.subarray(i, i + length);
      i += length;
    } else if (wire === 1) {
      i += 8;
      continue;
    } else if (wire === 5) {
      i += 4;
      continue;
    } else throw new Error(`wire type ${wire}`);
    if (number === n) found = value;
  }
  return found;
}
