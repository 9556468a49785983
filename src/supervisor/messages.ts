// The messages between the supervisor and its workers.
import type { Config } from '../config/schema.ts';
import type { TlsMaterial } from '../config/tls.ts';

export interface WorkerData {
  config: Config;
  /** Certificates for the TLS listener, read once by the supervisor; null without TLS_PORT. */
  tls: TlsMaterial | null;
  /** The TLS port actually listened on, 0 without TLS. */
  tlsPort: number;
  /** Epoch milliseconds when the supervisor started, and tcpool's version (INFO). */
  startedAt: number;
  version: string;
  /** The port resolved by the supervisor (PORT=0 becomes a real port once); -1 with PORT=off. */
  port: number;
  /** Every transport's ports, by config key, resolved likewise (src/transport/ports.ts). */
  ports: Record<string, number>;
  workerId: number;
  /** Worker slots the shared buffers hold (THREAD_POOL_MAX or THREAD_POOL_SIZE, the larger). */
  capacity: number;
  statsBuffer: SharedArrayBuffer;
  /** Per-command figures (src/stats/metrics.ts), laid out from the registry's commands. */
  metricsBuffer: SharedArrayBuffer;
  /**
   * Per-client-IP state (connections, AUTH failures, rate buckets); null when no per-IP limit is
   * on.
   */
  ipTableBuffer: SharedArrayBuffer | null;
}

/** A question every worker answers for its own clients (CLIENT LIST); the supervisor gathers. */
export type QueryKind = 'clients';

export type ToWorker =
  | { type: 'shutdown'; timeoutMs: number }
  /** A shrink: stop accepting, serve the clients on for up to drainMs, then shut down. */
  | { type: 'retire'; drainMs: number; shutdownMs: number }
  /** A whole-server drain: stop accepting, clients served on. */
  | { type: 'stop-accepting' }
  /** A reload: the new configuration; answered with 'reconfigured' and the same id. */
  | {
      type: 'reconfigure';
      id: number;
      config: Config;
      tls: TlsMaterial | null;
      ipTableBuffer: SharedArrayBuffer | null;
    }
  | { type: 'kill-client'; id: number; clientId: number }
  | { type: 'query'; id: number; kind: QueryKind }
  | { type: 'query-result'; id: number; results: unknown[] }
  /** The outcome of a 'spans' export, and a sent body's memory back (transferred) for reuse. */
  | { type: 'spans-done'; id: number; ok: boolean; error?: string; body?: ArrayBuffer };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'fatal'; message: string }
  | { type: 'log'; text: string }
  | { type: 'stopped-accepting' }
  | { type: 'drained' }
  | { type: 'query'; id: number; kind: QueryKind }
  | { type: 'query-reply'; id: number; result: unknown }
  | { type: 'reconfigured'; id: number }
  | { type: 'killed-client'; id: number; found: boolean }
  /**
   * A batch of spans to export (TRACING): an OTLP request body (protobuf or JSON), the first `length` bytes of
   * `body` (transferred); answered with 'spans-done' and the same id.
   */
  | { type: 'spans'; id: number; body: ArrayBuffer; length: number; spans: number };
