// The messages between the supervisor and its workers.
import type { Config } from '../config/schema.ts';

export interface WorkerData {
  config: Config;
  /** Epoch milliseconds when the supervisor started, and tcpool's version (INFO). */
  startedAt: number;
  version: string;
  /** The port resolved by the supervisor (PORT=0 becomes a real port once). */
  port: number;
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
