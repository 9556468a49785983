// Per-command figures in shared memory: commands by name and protocol, error replies by code, a
// latency histogram per command, bytes in and out, and each worker's event-loop and heap figures.
// Each worker writes only its own row, with plain typed-array increments (no Atomics, no locks,
// no prom-client): the admin endpoint reads every row when it is scraped (src/admin/metrics.ts).
// Values are Float64: integers stay exact up to 2^53, and an aligned 8-byte store is one machine
// write on the platforms Node runs on, so a reader sees the old value or the new one.
//
// Latency is the time the worker spent on the command. Taking the time costs about as much as a
// PING (performance.now() ~70 ns here), so it is taken twice per batch of pipelined commands, not
// per command: a batch's time is shared evenly by its commands. With one command per read (no
// pipelining) that is the command's own time; an asynchronous command is timed from its start to
// its reply.
import { performance } from 'node:perf_hooks';
import { codes } from '../errors.ts';
import { monotonicMs } from './clock.ts';

/** Upper bounds of the latency buckets, in seconds (the last bucket, +Inf, is implied). */
export const LATENCY_BUCKETS = [
  1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05,
  0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;
/** Bucket cells per command: one per bound, +Inf, then the sum of seconds. */
const HIST = LATENCY_BUCKETS.length + 2;
const SUM = LATENCY_BUCKETS.length + 1;

export const PROTOCOLS = ['line', 'resp'] as const;
/** Command index 0 counts requests for a command that does not exist. */
export const UNKNOWN_COMMAND = 'unknown';
export const ERROR_CODES = Object.keys(codes) as (keyof typeof codes)[];
const ERROR_INDEX = new Map<string, number>(ERROR_CODES.map((c, i) => [c, i]));

// A worker's own fields at the start of its row.
const BYTES_IN = 0;
const BYTES_OUT = 1;
/** Sampled once a second by the worker (see WorkerMetrics.sample). */
const ELU = 2;
const LAG_MEAN = 3;
const LAG_P99 = 4;
const LAG_MAX = 5;
const HEAP_USED = 6;
const HEAP_TOTAL = 7;
const SAMPLED_AT = 8;
const FIELDS = 9;

/** How the rows are laid out: both sides derive it from the same registry and capacity. */
export class MetricsLayout {
  /** Command names by index; index 0 is UNKNOWN_COMMAND. */
  readonly commands: readonly string[];
  readonly capacity: number;
  readonly rowLength: number;
  readonly commandsAt = FIELDS;
  readonly errorsAt: number;
  readonly histAt: number;

  constructor(commandNames: readonly string[], capacity: number) {
    this.commands = [UNKNOWN_COMMAND, ...commandNames];
    this.capacity = capacity;
    this.errorsAt = FIELDS + this.commands.length * PROTOCOLS.length;
    this.histAt = this.errorsAt + ERROR_CODES.length;
    this.rowLength = this.histAt + this.commands.length * HIST;
  }

  createBuffer(): SharedArrayBuffer {
    return new SharedArrayBuffer(this.capacity * this.rowLength * 8);
  }
}

/** The bucket of a duration in seconds: the first bound it does not exceed, else +Inf. */
export function bucketOf(seconds: number): number {
  let b = 0;
  while (b < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[b]) b++;
  return b;
}

/** Longest run of commands timed as one batch (a batch of 64 KiB of PINGs is thousands). */
const BATCH_MAX = 256;

/** A worker's writer: its own row only. */
export class WorkerMetrics {
  private readonly row: Float64Array;
  private readonly layout: MetricsLayout;
  private readonly index: Map<object, number>;
  /** The last spec looked up: a connection usually repeats its command. */
  private lastSpec: object | null = null;
  private lastIndex = 0;
  /** The commands of the batch being timed, and when it started. */
  private readonly batch = new Uint16Array(BATCH_MAX);
  private batchLength = 0;
  private batchStart = 0;

  /** `specs`: the registry's commands in the order the layout names them. */
  constructor(
    buffer: SharedArrayBuffer,
    layout: MetricsLayout,
    worker: number,
    specs: readonly object[],
  ) {
    this.layout = layout;
    this.row = new Float64Array(buffer, worker * layout.rowLength * 8, layout.rowLength);
    this.index = new Map(specs.map((s, i) => [s, i + 1]));
  }

  /** The command index of a spec (0 for undefined: an unknown command). */
  indexOf(spec: object | undefined): number {
    if (spec === this.lastSpec) return this.lastIndex;
    if (spec === undefined) return 0;
    this.lastSpec = spec;
    this.lastIndex = this.index.get(spec) ?? 0;
    return this.lastIndex;
  }

  received(bytes: number): void {
    this.row[BYTES_IN] += bytes;
  }

  sent(bytes: number): void {
    this.row[BYTES_OUT] += bytes;
  }

  /** A batch of commands starts: the one clock read before it. */
  startBatch(): void {
    this.batchLength = 0;
    this.batchStart = performance.now();
  }

  /** A synchronous command of the batch ran. */
  command(cmd: number, protocol: 0 | 1): void {
    this.row[this.layout.commandsAt + cmd * 2 + protocol]++;
    this.batch[this.batchLength++] = cmd;
    if (this.batchLength === BATCH_MAX) {
      this.endBatch();
      this.batchStart = performance.now();
    }
  }

  /** The batch is done: its time is shared by its commands. */
  endBatch(): void {
    const n = this.batchLength;
    if (n === 0) return;
    this.batchLength = 0;
    const each = (performance.now() - this.batchStart) / 1000 / n;
    const bucket = bucketOf(each);
    const row = this.row;
    const at = this.layout.histAt;
    for (let i = 0; i < n; i++) {
      const base = at + this.batch[i] * HIST;
      row[base + bucket]++;
      row[base + SUM] += each;
    }
  }

  /** An asynchronous command ran from `startedAt` (performance.now()) until now. */
  asyncCommand(cmd: number, protocol: 0 | 1, startedAt: number): void {
    this.row[this.layout.commandsAt + cmd * 2 + protocol]++;
    const seconds = (performance.now() - startedAt) / 1000;
    const base = this.layout.histAt + cmd * HIST;
    this.row[base + bucketOf(seconds)]++;
    this.row[base + SUM] += seconds;
  }

  /** An error reply, by its catalogue code (src/errors.ts). */
  error(code: string): void {
    const i = ERROR_INDEX.get(code);
    if (i !== undefined) this.row[this.layout.errorsAt + i]++;
  }

  /**
   * Once a second: event-loop utilisation and delay (seconds) over the last second, and the heap.
   */
  sample(elu: number, lagMean: number, lagP99: number, lagMax: number): void {
    const heap = process.memoryUsage();
    const row = this.row;
    row[ELU] = elu;
    row[LAG_MEAN] = lagMean;
    row[LAG_P99] = lagP99;
    row[LAG_MAX] = lagMax;
    row[HEAP_USED] = heap.heapUsed;
    row[HEAP_TOTAL] = heap.heapTotal;
    row[SAMPLED_AT] = monotonicMs();
  }
}

export interface WorkerSample {
  elu: number;
  lagMean: number;
  lagP99: number;
  lagMax: number;
  heapUsed: number;
  heapTotal: number;
  /** Epoch ms of the sample; 0 when the worker has not sampled yet. */
  sampledAt: number;
  /** This worker's commands, error replies and latency buckets (every command together). */
  commands: number;
  errors: number;
  latency: number[];
}

export interface CommandFigures {
  name: string;
  /** Requests by protocol. */
  line: number;
  resp: number;
  /** Per bucket (not cumulative), +Inf last. */
  buckets: number[];
  count: number;
  sumSeconds: number;
}

export interface MetricsSnapshot {
  bytesIn: number;
  bytesOut: number;
  /** Every command (unknown first), summed over all rows. */
  commands: CommandFigures[];
  errors: Record<string, number>;
  /** Per slot, as last sampled. */
  workers: WorkerSample[];
}

/** The reader (the admin endpoint, in the supervisor thread): sums every row at scrape time. */
export class MetricsReader {
  readonly layout: MetricsLayout;
  private readonly cells: Float64Array;

  constructor(buffer: SharedArrayBuffer, layout: MetricsLayout) {
    this.layout = layout;
    this.cells = new Float64Array(buffer);
  }

  /** One worker's last event-loop utilisation sample and when it was taken (the autoscaler's). */
  load(worker: number): { elu: number; sampledAt: number } {
    const r = worker * this.layout.rowLength;
    return { elu: this.cells[r + ELU], sampledAt: this.cells[r + SAMPLED_AT] };
  }

  snapshot(): MetricsSnapshot {
    const { layout, cells } = this;
    const commands: CommandFigures[] = layout.commands.map((name) => ({
      name,
      line: 0,
      resp: 0,
      buckets: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0),
      count: 0,
      sumSeconds: 0,
    }));
    const errors = Object.fromEntries(ERROR_CODES.map((c) => [c, 0]));
    const workers: WorkerSample[] = [];
    let bytesIn = 0;
    let bytesOut = 0;
    for (let w = 0; w < layout.capacity; w++) {
      const r = w * layout.rowLength;
      bytesIn += cells[r + BYTES_IN];
      bytesOut += cells[r + BYTES_OUT];
      const worker: WorkerSample = {
        elu: cells[r + ELU],
        lagMean: cells[r + LAG_MEAN],
        lagP99: cells[r + LAG_P99],
        lagMax: cells[r + LAG_MAX],
        heapUsed: cells[r + HEAP_USED],
        heapTotal: cells[r + HEAP_TOTAL],
        sampledAt: cells[r + SAMPLED_AT],
        commands: 0,
        errors: 0,
        latency: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0),
      };
      workers.push(worker);
      for (let c = 0; c < commands.length; c++) {
        const fig = commands[c];
        const line = cells[r + layout.commandsAt + c * 2];
        const resp = cells[r + layout.commandsAt + c * 2 + 1];
        fig.line += line;
        fig.resp += resp;
        worker.commands += line + resp;
        const h = r + layout.histAt + c * HIST;
        for (let b = 0; b <= LATENCY_BUCKETS.length; b++) {
          fig.buckets[b] += cells[h + b];
          fig.count += cells[h + b];
          worker.latency[b] += cells[h + b];
        }
        fig.sumSeconds += cells[h + SUM];
      }
      ERROR_CODES.forEach((code, i) => {
        errors[code] += cells[r + layout.errorsAt + i];
        worker.errors += cells[r + layout.errorsAt + i];
      });
    }
    return { bytesIn, bytesOut, commands, errors, workers };
  }
}

/**
 * The q-quantile (0..1) of bucket counts (not cumulative, +Inf last), as the upper bound of the
 * bucket it falls in (Prometheus's histogram_quantile interpolates; an operator's table need not).
 * 0 when there are no observations; the largest bound when it falls in +Inf.
 */
export function quantile(buckets: readonly number[], q: number): number {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  let seen = 0;
  for (let b = 0; b < buckets.length; b++) {
    seen += buckets[b];
    if (seen >= q * total) return LATENCY_BUCKETS[Math.min(b, LATENCY_BUCKETS.length - 1)];
  }
  return LATENCY_BUCKETS[LATENCY_BUCKETS.length - 1];
}
