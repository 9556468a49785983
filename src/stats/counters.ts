// Counters shared by the supervisor and every worker: one SharedArrayBuffer updated with Atomics,
// the lock-free form of the original's mutex-protected client counter.
//
// Layout: Int32 gauges [activeTotal, restarts, lastClientId, poolSize, active(w0), active(w1), …,
// state(w0), state(w1), …], then 64-bit counters per worker slot (COUNTERS below). The buffer has
// a row for every slot the pool may grow to (THREAD_POOL_MAX), so a live resize needs no new
// buffer. Totals are sums over all rows, so a row keeps counting across a restart of its worker,
// and across its slot being retired and used again.

const ACTIVE_TOTAL = 0;
const RESTARTS = 1;
const LAST_CLIENT_ID = 2;
const POOL_SIZE = 3;
const GAUGE_HEADER = 4;

/**
 * What a worker slot is doing: no worker, serving, or retiring (a shrink: draining its clients).
 */
export const SLOT_FREE = 0;
export const SLOT_SERVING = 1;
export const SLOT_RETIRING = 2;

/** Every event tcpool counts, per worker; STATS FULL and INFO show the totals under these names. */
export const COUNTERS = [
  'connections',
  'commands',
  'rejected',
  'rejected_per_ip',
  'protected_mode_rejections',
  'auth_failures',
  'rate_limited',
  'idle_timeouts',
  'request_timeouts',
  'output_limit_disconnects',
  'proxy_rejections',
  'tls_handshake_failures',
  'tls_handshake_timeouts',
  /** A gauge kept with the counters (up and down), so STATS FULL and INFO show it. */
  'tls_handshakes_in_progress',
  /** accept() failed (EMFILE, ENFILE: out of file descriptors); the client got no reply. */
  'accept_errors',
  /**
   * Connections that never sent a byte, closed at MAX_CONNECTIONS to make room
   * (EVICT_SILENT_AFTER_MS).
   */
  'silent_evictions',
  // The supervisor's log writer counts into worker 0's row (totals are what STATS and INFO show).
  'log_lines_dropped',
  'log_write_errors',
  /** WebSocket upgrades refused: an Origin not in WS_ALLOWED_ORIGINS. */
  'ws_origin_rejections',
  /** WebSocket clients closed for a message over WS_MAX_MESSAGE_BYTES. */
  'ws_oversized_messages',
  /** WebSocket clients closed for not answering a ping (WS_PING_INTERVAL_MS). */
  'ws_ping_timeouts',
  /**
   * HTTP requests refused before they ran: a malformed body, a body over HTTP_MAX_BODY_BYTES, an
   * unknown path.
   */
  'http_bad_requests',
  /** TLS handshakes completed. */
  'tls_handshakes',
  // The supervisor's reloads (SIGHUP, POST /api/v1/reload), counted into worker 0's row too.
  'reloads',
  'reload_failures',
  /** COMMANDS_MODULE commands that ran past their timeout (COMMAND_TIMEOUT_MS or their own). */
  'command_timeouts',
  /** Subscribers cut off for not reading their messages (PUBSUB_OUTPUT_LIMIT_BYTES). */
  'pubsub_output_disconnects',
  /**
   * Connections closed for an HTTP request line (POST, Host:) on a command port: a possible
   * cross-protocol attack from a web page.
   */
  'cross_protocol_rejections',
  // POOL_AUTOSCALE's changes of the pool (the supervisor's, counted into worker 0's row).
  'autoscale_grows',
  'autoscale_shrinks',
  // TRACING's spans: taken by the collector, dropped (the queue full: OTEL_BSP_MAX_QUEUE_SIZE),
  // or lost in an export that failed. Counted per batch, or per span only when dropped.
  'trace_spans_exported',
  'trace_spans_dropped',
  'trace_spans_failed',
] as const;
export type Counter = (typeof COUNTERS)[number];
/**
 * The counters after the three each worker's row already shows: STATS FULL and INFO list them by
 * name.
 */
export const EVENT_COUNTERS: readonly Counter[] = COUNTERS.slice(COUNTERS.indexOf('rejected') + 1);
const INDEX = Object.fromEntries(COUNTERS.map((name, i) => [name, i])) as Record<Counter, number>;
const PER_WORKER = COUNTERS.length;

export interface WorkerFigures {
  /** SLOT_SERVING or SLOT_RETIRING (free slots are not listed, unless below one in use). */
  state: number;
  active: number;
  connections: number;
  commands: number;
  rejected: number;
}

export interface StatsSnapshot extends Omit<WorkerFigures, 'state'> {
  restarts: number;
  /** Workers serving now (THREAD_POOL_SIZE as last resized); retiring ones are not counted. */
  poolSize: number;
  /** Every slot up to the last one in use, by slot index. */
  workers: WorkerFigures[];
  /** Every counter, summed over the workers. */
  totals: Record<Counter, number>;
}

function gaugeBytes(workers: number): number {
  return Math.ceil(((GAUGE_HEADER + 2 * workers) * 4) / 8) * 8;
}

export class SharedStats {
  readonly buffer: SharedArrayBuffer;
  readonly workers: number;
  private readonly gauges: Int32Array;
  private readonly counters: BigInt64Array;

  /** Rows for `capacity` worker slots, the first `serving` of them marked serving. */
  static create(capacity: number, serving = capacity): SharedStats {
    const stats = new SharedStats(
      new SharedArrayBuffer(gaugeBytes(capacity) + capacity * PER_WORKER * 8),
      capacity,
    );
    for (let w = 0; w < serving; w++) stats.setSlotState(w, SLOT_SERVING);
    return stats;
  }

  /** `workers`: the capacity (slots) the buffer was created for. */
  constructor(buffer: SharedArrayBuffer, workers: number) {
    this.buffer = buffer;
    this.workers = workers;
    this.gauges = new Int32Array(buffer, 0, GAUGE_HEADER + 2 * workers);
    this.counters = new BigInt64Array(buffer, gaugeBytes(workers), workers * PER_WORKER);
  }

  /** The supervisor marks slots as workers start, retire and end; the pool size follows. */
  setSlotState(w: number, state: number): void {
    const at = GAUGE_HEADER + this.workers + w;
    const was = Atomics.exchange(this.gauges, at, state);
    const delta = (state === SLOT_SERVING ? 1 : 0) - (was === SLOT_SERVING ? 1 : 0);
    if (delta !== 0) Atomics.add(this.gauges, POOL_SIZE, delta);
  }

  slotState(w: number): number {
    return Atomics.load(this.gauges, GAUGE_HEADER + this.workers + w);
  }

  poolSize(): number {
    return Atomics.load(this.gauges, POOL_SIZE);
  }

  /** Active clients of slot `w`. */
  workerActive(w: number): number {
    return Atomics.load(this.gauges, GAUGE_HEADER + w);
  }

  /**
   * Counts one connection of worker `w` against the global limit. Returns the number of
   * active clients including this one, or 0 when the limit is reached (counted as a rejection
   * unless `countRejection` is false: the caller may make room and try again).
   */
  acquireConnection(w: number, max: number, countRejection = true): number {
    const active = Atomics.add(this.gauges, ACTIVE_TOTAL, 1) + 1;
    if (active > max) {
      Atomics.sub(this.gauges, ACTIVE_TOTAL, 1);
      if (countRejection) this.count(w, 'rejected');
      return 0;
    }
    Atomics.add(this.gauges, GAUGE_HEADER + w, 1);
    this.count(w, 'connections');
    return active;
  }

  /** Gives back what acquireConnection took; returns the active clients left. */
  releaseConnection(w: number): number {
    Atomics.sub(this.gauges, GAUGE_HEADER + w, 1);
    return Atomics.sub(this.gauges, ACTIVE_TOTAL, 1) - 1;
  }

  count(w: number, counter: Counter, n = 1): void {
    Atomics.add(this.counters, w * PER_WORKER + INDEX[counter], BigInt(n));
  }

  addCommands(w: number, n: number): void {
    Atomics.add(this.counters, w * PER_WORKER + INDEX.commands, BigInt(n));
  }

  /** A client id unique across all workers (CLIENT ID). */
  nextClientId(): number {
    return Atomics.add(this.gauges, LAST_CLIENT_ID, 1) + 1;
  }

  activeClients(): number {
    return Atomics.load(this.gauges, ACTIVE_TOTAL);
  }

  /** A worker died with its connections: give their places back and count the restart. */
  workerLost(w: number): number {
    const lost = Atomics.exchange(this.gauges, GAUGE_HEADER + w, 0);
    Atomics.store(this.counters, w * PER_WORKER + INDEX.tls_handshakes_in_progress, 0n);
    Atomics.sub(this.gauges, ACTIVE_TOTAL, lost);
    Atomics.add(this.gauges, RESTARTS, 1);
    return lost;
  }

  snapshot(): StatsSnapshot {
    const workers: WorkerFigures[] = [];
    const totals = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<Counter, number>;
    let shown = 0;
    for (let w = 0; w < this.workers; w++) if (this.slotState(w) !== SLOT_FREE) shown = w + 1;
    for (let w = 0; w < this.workers; w++) {
      const base = w * PER_WORKER;
      for (const c of COUNTERS) totals[c] += Number(Atomics.load(this.counters, base + INDEX[c]));
      if (w >= shown) continue;
      workers.push({
        state: this.slotState(w),
        active: Atomics.load(this.gauges, GAUGE_HEADER + w),
        connections: Number(Atomics.load(this.counters, base + INDEX.connections)),
        commands: Number(Atomics.load(this.counters, base + INDEX.commands)),
        rejected: Number(Atomics.load(this.counters, base + INDEX.rejected)),
      });
    }
    return {
      active: Atomics.load(this.gauges, ACTIVE_TOTAL),
      connections: totals.connections,
      commands: totals.commands,
      rejected: totals.rejected,
      restarts: Atomics.load(this.gauges, RESTARTS),
      poolSize: this.poolSize(),
      workers,
      totals,
    };
  }
}
