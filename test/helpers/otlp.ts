// OTLP/protobuf, decoded by protobufjs (a decoder nobody here wrote) with the opentelemetry-proto
// messages tcpool writes: ExportTraceServiceRequest and what it holds, with the field numbers of
// opentelemetry-proto (trace/v1/trace.proto, common/v1/common.proto, resource/v1/resource.proto).
// test/unit/otlp-proto.test.ts checks this schema against what OpenTelemetry's own
// ProtobufTraceSerializer writes.
import protobufjs from 'protobufjs';

const SCHEMA = `
syntax = "proto3";
package otlp;
message AnyValue {
  oneof value {
    string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4;
    ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope {
  string name = 1; string version = 2; repeated KeyValue attributes = 3;
  uint32 dropped_attributes_count = 4;
}
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4;
  fixed32 flags = 16; string name = 5; int32 kind = 6;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; uint32 dropped_attributes_count = 10;
  uint32 dropped_events_count = 12; uint32 dropped_links_count = 14; Status status = 15;
}
message Status { string message = 2; int32 code = 3; }
`;
const Request = protobufjs.parse(SCHEMA).root.lookupType('otlp.ExportTraceServiceRequest');

/** A decoded request in OTLP/JSON's mapping: ids in hex, 64-bit integers as decimal strings. */
export function decode(bytes: Uint8Array): Record<string, unknown> {
  const message = Request.decode(bytes);
  return Request.toObject(message, { longs: String, bytes: Array, oneofs: false }) as Record<
    string,
    unknown
  >;
}

/** An OTLP span as the tests read it: ids as hex (OTLP/JSON) or as bytes (protobufjs). */
export interface OtlpSpan<Id> {
  traceId: Id;
  spanId: Id;
  parentSpanId?: Id;
  traceState?: string;
  flags: number;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: Record<string, unknown> }[];
  status?: { code?: number; message?: string };
}
export type DecodedSpan = OtlpSpan<number[]>;
export const spansIn = (request: Record<string, unknown>): DecodedSpan[] =>
  (request as { resourceSpans: { scopeSpans: { spans: DecodedSpan[] }[] }[] }).resourceSpans[0]
    .scopeSpans[0].spans;
export const hex = (bytes: number[] | undefined) =>
  bytes === undefined ? undefined : Buffer.from(bytes).toString('hex');

/** The same span in the form OTLP/JSON writes it (hex ids; an unset status as {}). */
export function asJson(span: DecodedSpan): Record<string, unknown> {
  const out: Record<string, unknown> = {
    traceId: hex(span.traceId),
    spanId: hex(span.spanId),
    flags: span.flags,
    name: span.name,
    kind: span.kind,
    startTimeUnixNano: span.startTimeUnixNano,
    endTimeUnixNano: span.endTimeUnixNano,
    attributes: span.attributes.map(({ key, value }) => ({ key, value: jsonValue(value) })),
    status: span.status ?? {},
  };
  if (span.parentSpanId !== undefined) out.parentSpanId = hex(span.parentSpanId);
  if (span.traceState !== undefined) out.traceState = span.traceState;
  return out;
}
/** protobufjs's int64 (a decimal string) as OTLP/JSON's tcpool writes (a number). */
function jsonValue(value: Record<string, unknown>): Record<string, unknown> {
  if (typeof value.intValue === 'string') return { intValue: Number(value.intValue) };
  return value;
}

/** A request's resources and spans in OTLP/JSON's mapping (as the JSON encoding writes them). */
export function decodeAsJson(bytes: Uint8Array): {
  resourceSpans: {
    resource: { attributes: { key: string; value: Record<string, unknown> }[] };
    scopeSpans: { spans: Record<string, unknown>[] }[];
  }[];
} {
  const request = decode(bytes) as {
    resourceSpans: {
      resource: { attributes: { key: string; value: Record<string, unknown> }[] };
      scopeSpans: { spans: DecodedSpan[] }[];
    }[];
  };
  return {
    resourceSpans: request.resourceSpans.map((rs) => ({
      resource: {
        attributes: rs.resource.attributes.map(({ key, value }) => ({
          key,
          value: jsonValue(value),
        })),
      },
      scopeSpans: rs.scopeSpans.map((ss) => ({ spans: ss.spans.map(asJson) })),
    })),
  };
}
