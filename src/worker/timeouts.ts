// Time limits on connections, enforced by one coarse timer per worker (no timer per client):
// IDLE_TIMEOUT_MS, REQUEST_TIMEOUT_MS, and how long a closing connection may linger. Also which
// connection makes room when the server is full: the oldest that never sent a byte.
import type { Config } from '../config/schema.ts';
import type { LogThrottle } from '../log/throttle.ts';
import type { Counter } from '../stats/counters.ts';
import type { TrackedClient } from '../transport/transport.ts';
import type { Connection } from './connection.ts';
import { tickMs } from '../stats/clock.ts';

/**
 * How long a connection we closed (QUIT, end of input) may keep us reading and dropping its input
 * before it is cut: nginx's lingering_timeout. Shutdown has its own bound, SHUTDOWN_TIMEOUT_MS.
 */
export const LINGER_MS = 5000;

export interface SweepOwner {
  readonly connections: ReadonlySet<TrackedClient>;
  readonly draining: boolean;
  readonly throttle: LogThrottle;
  count(counter: Counter): void;
}

/** Starts the sweep; returns the timer (unref'd) so shutdown can stop it. */
export function startSweep(owner: SweepOwner, config: Config): NodeJS.Timeout {
  const idle = config.IDLE_TIMEOUT_MS;
  const request = config.REQUEST_TIMEOUT_MS;
  const shortest = Math.min(idle || Infinity, request || Infinity, LINGER_MS);
  const every = Math.max(50, Math.min(1000, Math.floor(shortest / 4)));
  const timer = setInterval(() => {
    const now = tickMs();
    // During shutdown, lingering is bounded by SHUTDOWN_TIMEOUT_MS instead.
    const linger = owner.draining ? Infinity : LINGER_MS;
    for (const conn of owner.connections) {
      const expired = conn.expired(now, idle, request, linger);
      if (expired === 'idle') {
        owner.count('idle_timeouts');
        owner.throttle.warn('Idle timeout', `Client idle for ${idle} ms, closed: ${conn.peer}`);
        conn.destroy();
      } else if (expired === 'request') {
        owner.count('request_timeouts');
        owner.throttle.warn(
          'Request timeout',
          `Incomplete request for ${request} ms, closed: ${conn.peer}`,
        );
        conn.destroy();
      } else if (expired === 'linger') {
        conn.destroy();
      }
    }
  }, every);
  timer.unref();
  return timer;
}

/**
 * Connections that have not sent a byte yet, oldest first. When the server is full, the oldest
 * of them that has been silent for EVICT_SILENT_AFTER_MS is closed to let a new client in: a flood
 * of connections that never speak cannot lock real clients out, while an idle pooled connection
 * that has spoken once is never touched.
 */
export class SilentConnections {
  /** EVICT_SILENT_AFTER_MS; a reload may change it (connections already silent stay listed). */
  evictAfterMs: number;
  private readonly silent = new Set<Connection>(); // a Set keeps insertion order: oldest first

  constructor(evictAfterMs: number) {
    this.evictAfterMs = evictAfterMs;
  }

  add(conn: Connection): void {
    if (this.evictAfterMs > 0) this.silent.add(conn);
  }

  delete(conn: Connection): void {
    this.silent.delete(conn);
  }

  /** The oldest connection silent long enough to be evicted, removed from the set; or null. */
  takeOldest(now: number): Connection | null {
    if (this.evictAfterMs === 0) return null;
    for (const conn of this.silent) {
      if (now - conn.createdAt < this.evictAfterMs) return null; // the rest are younger
      this.silent.delete(conn);
      return conn;
    }
    return null;
  }
}
