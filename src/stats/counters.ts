// Counters shared by the supervisor and every worker: one SharedArrayBuffer updated with Atomics,
// the lock-free form of the original's mutex-protected client counter.
//
// Layout: Int32 gauges [activeTotal, restarts, lastClientId, active(w0), active(w1), …], then 64-bit counters
// per worker [connections, commands, rejected]. Totals are sums over the workers' rows, so a row
// keeps counting across a restart of its worker.

const ACTIVE_TOTAL = 0;
const RESTARTS = 1;
const LAST_CLIENT_ID = 2;
const GAUGE_HEADER = 3;
const CONNECTIONS = 0;
const COMMANDS = 1;
const REJECTED = 2;
const COUNTERS_PER_WORKER = 3;

export interface WorkerFigures {
  active: number;
  connections: number;
  commands: number;
  rejected: number;
}

export interface StatsSnapshot extends WorkerFigures {
  restarts: number;
  workers: WorkerFigures[];
}

export class SharedStats {
  readonly buffer: SharedArrayBuffer;
  readonly workers: number;
  private readonly gauges: Int32Array;
  private readonly counters: BigInt64Array;

  static create(workers: number): SharedStats {
    const gaugeBytes = Math.ceil(((GAUGE_HEADER + workers) * 4) / 8) * 8;
    return new SharedStats(new SharedArrayBuffer(gaugeBytes + workers * COUNTERS_PER_WORKER * 8), workers);
  }

  constructor(buffer: SharedArrayBuffer, workers: number) {
    this.buffer = buffer;
    this.workers = workers;
    const gaugeBytes = Math.ceil(((GAUGE_HEADER + workers) * 4) / 8) * 8;
    this.gauges = new Int32Array(buffer, 0, GAUGE_HEADER + workers);
    this.counters = new BigInt64Array(buffer, gaugeBytes, workers * COUNTERS_PER_WORKER);
  }

  /**
   * Reserves one connection slot for worker `w` under the global limit. Returns the number of
   * active clients including this one, or 0 when the limit is reached (and counts the rejection).
   */
  acquireConnection(w: number, max: number): number {
    const active = Atomics.add(this.gauges, ACTIVE_TOTAL, 1) + 1;
    if (active > max) {
      Atomics.sub(this.gauges, ACTIVE_TOTAL, 1);
      Atomics.add(this.counters, w * COUNTERS_PER_WORKER + REJECTED, 1n);
      return 0;
    }
    Atomics.add(this.gauges, GAUGE_HEADER + w, 1);
    Atomics.add(this.counters, w * COUNTERS_PER_WORKER + CONNECTIONS, 1n);
    return active;
  }

  /** Frees a slot taken by acquireConnection; returns the active clients left. */
  releaseConnection(w: number): number {
    Atomics.sub(this.gauges, GAUGE_HEADER + w, 1);
    return Atomics.sub(this.gauges, ACTIVE_TOTAL, 1) - 1;
  }

  addCommands(w: number, n: number): void {
    Atomics.add(this.counters, w * COUNTERS_PER_WORKER + COMMANDS, BigInt(n));
  }

  /** A client id unique across all workers (CLIENT ID). */
  nextClientId(): number {
    return Atomics.add(this.gauges, LAST_CLIENT_ID, 1) + 1;
  }

  activeClients(): number {
    return Atomics.load(this.gauges, ACTIVE_TOTAL);
  }

  /** A worker died with its connections: give their slots back and count the restart. */
  workerLost(w: number): number {
    const lost = Atomics.exchange(this.gauges, GAUGE_HEADER + w, 0);
    Atomics.sub(this.gauges, ACTIVE_TOTAL, lost);
    Atomics.add(this.gauges, RESTARTS, 1);
    return lost;
  }

  snapshot(): StatsSnapshot {
    const workers: WorkerFigures[] = [];
    const total: WorkerFigures = { active: 0, connections: 0, commands: 0, rejected: 0 };
    for (let w = 0; w < this.workers; w++) {
      const base = w * COUNTERS_PER_WORKER;
      const row: WorkerFigures = {
        active: Atomics.load(this.gauges, GAUGE_HEADER + w),
        connections: Number(Atomics.load(this.counters, base + CONNECTIONS)),
        commands: Number(Atomics.load(this.counters, base + COMMANDS)),
        rejected: Number(Atomics.load(this.counters, base + REJECTED)),
      };
      workers.push(row);
      total.connections += row.connections;
      total.commands += row.commands;
      total.rejected += row.rejected;
    }
    total.active = Atomics.load(this.gauges, ACTIVE_TOTAL);
    return { ...total, restarts: Atomics.load(this.gauges, RESTARTS), workers };
  }
}
