// The OTLP/HTTP delivery of encoded span batches: OpenTelemetry's own exporter (the transport
// OTLPTraceExporter is built on, with its OTEL_EXPORTER_OTLP_[TRACES_]* settings: endpoint,
// headers, timeout, compression, retries), fed tcpool's ready-made request bodies. It runs in the
// supervisor: workers hand it their batches (transferred, not copied), so no worker's event loop
// carries an HTTP client. Sending from the worker cost ~10 % CPU per request at P=16 in
// compare.sh; encoding the spans without sending them cost nothing measurable
// (docs/PERFORMANCE.md, "Tracing").
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

/**
 * Loads the exporter (only when tracing is on) and makes one that lets `concurrency` exports run
 * at once (the workers' in-flight exports together; the OpenTelemetry default is 30).
 */
export async function otlpHttpExporter(concurrency = 30): Promise<SpanExporter> {
  const otlp = await import('@opentelemetry/otlp-exporter-base/node-http');
  // What OTLPTraceExporter (exporter-trace-otlp-http) builds, with a serialiser that passes the
  // body through.
  const delegate = otlp.createOtlpHttpExportDelegate(
    otlp.convertLegacyHttpOptions({ concurrencyLimit: concurrency }, 'TRACES', 'v1/traces', {
      'Content-Type': 'application/json',
    }),
    {
      serializeRequest: (request: ExportRequest) => request.body,
      deserializeResponse: (data: Uint8Array) =>
        JSON.parse(Buffer.from(data).toString() || '{}') as object,
    },
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
