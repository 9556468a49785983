// What `tcpool bench` runs, and the messages between its coordinator and its client threads.
import { encodeRespRequest } from '../protocol/resp.ts';

export interface BenchOptions {
  host: string;
  port: number;
  connections: number;
  pipeline: number;
  /** Total requests (Infinity with a duration). */
  requests: number;
  /** Seconds; 0 = until `requests` are answered. */
  duration: number;
  protocol: 'line' | 'resp';
  command: string;
  threads: number;
  /** Requests per second across all connections (open loop); 0 = closed loop. */
  rate: number;
  idle: number;
  stallMs: number;
}

/** `tcpool bench`'s defaults (its --help), with what a caller sets instead. */
export function benchOptions(set: Partial<BenchOptions> = {}): BenchOptions {
  return {
    host: '127.0.0.1',
    port: 8080,
    connections: 50,
    pipeline: 1,
    requests: 100_000,
    duration: 0,
    protocol: 'line',
    command: 'PING',
    threads: 1,
    rate: 0,
    idle: 0,
    stallMs: 5000,
    ...set,
  };
}

/** One client thread's share. */
export interface BenchPlan {
  host: string;
  port: number;
  protocol: 'line' | 'resp';
  /** One request's bytes, latin1. */
  request: string;
  connections: number;
  pipeline: number;
  requests: number;
  rate: number;
  idle: number;
  stallMs: number;
}

export type ToBenchThread = { type: 'start' } | { type: 'stop' };

export type FromBenchThread =
  | { type: 'ready' }
  | { type: 'progress'; done: number; errors: number; histogram: string }
  | {
      type: 'done';
      histogram: string;
      done: number;
      sent: number;
      errors: number;
      problems: string[];
      idleOpen: number;
      idleAnswered: number;
    };

/** The bytes of one request: a line, or a RESP array of the command's words. */
export function encodeRequest(protocol: 'line' | 'resp', command: string): Buffer {
  if (protocol === 'line') return Buffer.from(command + '\n');
  return encodeRespRequest(command.split(' ').filter((w) => w !== ''));
}

/** Splits `total` into `parts` nearly equal whole shares. */
export function share(total: number, parts: number, index: number): number {
  if (total === Infinity) return Infinity;
  return Math.floor(total / parts) + (index < total % parts ? 1 : 0);
}
