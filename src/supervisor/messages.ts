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
  statsBuffer: SharedArrayBuffer;
  /** Per-client-IP state (connections, AUTH failures, rate buckets); null when no per-IP limit is on. */
  ipTableBuffer: SharedArrayBuffer | null;
}

/** A question every worker answers for its own clients (CLIENT LIST); the supervisor gathers. */
export type QueryKind = 'clients';

export type ToWorker =
  | { type: 'shutdown'; timeoutMs: number }
  | { type: 'query'; id: number; kind: QueryKind }
  | { type: 'query-result'; id: number; results: unknown[] };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'fatal'; message: string }
  | { type: 'log'; text: string }
  | { type: 'stopped-accepting' }
  | { type: 'drained' }
  | { type: 'query'; id: number; kind: QueryKind }
  | { type: 'query-reply'; id: number; result: unknown };
