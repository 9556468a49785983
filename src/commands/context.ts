// What a command handler may see and do. A connection implements this itself, so running a
// command allocates no context object.
import type { SharedStats } from '../stats/counters.ts';
import type { Registry } from './registry.ts';

export interface CommandContext {
  readonly registry: Registry;
  readonly stats: SharedStats;
  /** Index of the worker thread serving this client. */
  readonly workerId: number;
  /** "ip:port" of the client. */
  readonly peer: string;
  /** Close the connection once this command's reply has been sent; later input is ignored. */
  closeAfterReply(): void;
}
