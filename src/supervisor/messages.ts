// The messages between the supervisor and its workers.
import type { Config } from '../config/schema.ts';

export interface WorkerData {
  config: Config;
  /** The port resolved by the supervisor (PORT=0 becomes a real port once). */
  port: number;
  workerId: number;
  statsBuffer: SharedArrayBuffer;
}

export type ToWorker = { type: 'shutdown'; timeoutMs: number };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'fatal'; message: string }
  | { type: 'log'; text: string }
  | { type: 'stopped-accepting' }
  | { type: 'drained' };
