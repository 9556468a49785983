// `tcpool bench` coordinator: starts the client threads, shows live progress, merges their HDR
// histograms and reports. It never hangs: stalls and closed connections end the run with an error.
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { decodeHistogram, newHistogram } from './histogram.ts';
import {
  type BenchOptions,
  type BenchPlan,
  encodeRequest,
  type FromBenchThread,
  share,
  type ToBenchThread,
} from './plan.ts';

const THREAD_URL = new URL(
  `./client-thread${extname(fileURLToPath(import.meta.url))}`,
  import.meta.url,
);

export interface BenchResult {
  options: BenchOptions;
  elapsedSeconds: number;
  requests: number;
  errors: number;
  rps: number;
  latencyUs: {
    p50: number;
    p90: number;
    p99: number;
    'p99.9': number;
    max: number;
    min: number;
    mean: number;
  };
  /** For the chart: [percentile, latency µs]. */
  curve: [number, number][];
  idle: { requested: number; open: number; answered: number };
  problems: string[];
  ok: boolean;
}

type ThreadResult = Extract<FromBenchThread, { type: 'done' }>;

export async function runBench(
  options: BenchOptions,
  onProgress?: (line: string) => void,
): Promise<BenchResult> {
  const threads = Math.max(1, Math.min(options.threads, Math.max(options.connections, 1)));
  const progress = new Progress(threads);
  const workers: Worker[] = [];
  const results: ThreadResult[] = [];
  const timers: NodeJS.Timeout[] = [];
  let started = 0;
  const finished = new Promise<void>((resolve, reject) => {
    let ready = 0;
    for (let t = 0; t < threads; t++) {
      const w = new Worker(THREAD_URL, { workerData: threadPlan(options, threads, t) });
      workers.push(w);
      w.on('message', (msg: FromBenchThread) => {
        if (msg.type === 'ready') {
          if (++ready < threads) return;
          started = performance.now();
          timers.push(...startRun(workers, options, progress, onProgress));
        } else if (msg.type === 'progress') {
          progress.update(t, msg);
        } else if (results.push(msg) === threads) {
          resolve();
        }
      });
      w.on('error', reject);
    }
  });
  try {
    await finished;
  } finally {
    for (const timer of timers) clearTimeout(timer);
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return summarise(options, results, (performance.now() - started) / 1000);
}

/** Thread `t`'s share of the connections, requests, rate and idle connections. */
function threadPlan(options: BenchOptions, threads: number, t: number): BenchPlan {
  const connections = share(options.connections, threads, t);
  return {
    host: options.host,
    port: options.port,
    protocol: options.protocol,
    request: encodeRequest(options.protocol, options.command).toString('latin1'),
    connections,
    pipeline: options.pipeline,
    requests: share(options.requests, threads, t),
    rate: options.rate === 0 ? 0 : (options.rate * connections) / options.connections,
    idle: share(options.idle, threads, t),
    stallMs: options.stallMs,
  };
}

/** Every thread is ready: start them together; stop them after --duration; report each second. */
function startRun(
  workers: Worker[],
  options: BenchOptions,
  progress: Progress,
  onProgress?: (line: string) => void,
): NodeJS.Timeout[] {
  const timers: NodeJS.Timeout[] = [];
  for (const w of workers) w.postMessage({ type: 'start' } satisfies ToBenchThread);
  if (options.duration > 0) {
    timers.push(
      setTimeout(() => {
        for (const w of workers) w.postMessage({ type: 'stop' } satisfies ToBenchThread);
      }, options.duration * 1000),
    );
  }
  progress.begin();
  if (onProgress) timers.push(setInterval(() => onProgress(progress.line()), 1000));
  return timers;
}

/** The live figures: totals from each thread's last report, p99 over the last second. */
class Progress {
  private readonly doneByThread: number[];
  private readonly errorsByThread: number[];
  private window = newHistogram();
  private started = performance.now();
  private lastAt = this.started;
  private lastDone = 0;

  constructor(threads: number) {
    this.doneByThread = new Array<number>(threads).fill(0);
    this.errorsByThread = new Array<number>(threads).fill(0);
  }

  /** The run starts now (the threads may have spent a while opening idle connections). */
  begin(): void {
    this.started = performance.now();
    this.lastAt = this.started;
  }

  update(t: number, msg: Extract<FromBenchThread, { type: 'progress' }>): void {
    this.doneByThread[t] = msg.done;
    this.errorsByThread[t] = msg.errors;
    this.window.add(decodeHistogram(msg.histogram));
  }

  line(): string {
    const now = performance.now();
    const done = this.doneByThread.reduce((a, b) => a + b, 0);
    const errors = this.errorsByThread.reduce((a, b) => a + b, 0);
    const rps = ((done - this.lastDone) * 1000) / Math.max(1, now - this.lastAt);
    const p99 = this.window.totalCount > 0 ? this.window.getValueAtPercentile(99) : 0;
    this.lastDone = done;
    this.lastAt = now;
    this.window = newHistogram();
    return `elapsed ${((now - this.started) / 1000).toFixed(1)}s  requests ${done}  rps ${Math.round(rps)}  p99 ${formatUs(p99)}  errors ${errors}`;
  }
}

/** Merges the threads' results into the report; anything that went wrong is a problem. */
function summarise(options: BenchOptions, results: ThreadResult[], elapsed: number): BenchResult {
  const merged = newHistogram();
  for (const r of results) merged.add(decodeHistogram(r.histogram));
  const sum = (f: (r: ThreadResult) => number): number => results.reduce((n, r) => n + f(r), 0);
  const requests = sum((r) => r.done);
  const errorCount = sum((r) => r.errors);
  const sent = sum((r) => r.sent);
  const idleAnswered = sum((r) => r.idleAnswered);
  const problems = [...new Set(results.flatMap((r) => r.problems))];
  if (sent > requests && problems.length === 0)
    problems.push(`${sent - requests} request(s) never answered`);
  if (options.idle > 0 && idleAnswered < options.idle)
    problems.push(
      `only ${idleAnswered} of ${options.idle} idle connections answered after the run`,
    );
  const any = merged.totalCount > 0;
  const pct = (p: number) => (any ? merged.getValueAtPercentile(p) : 0);
  const curve = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100].map(
    (p): [number, number] => [p, pct(p)],
  );
  return {
    options,
    elapsedSeconds: elapsed,
    requests,
    errors: errorCount,
    rps: requests / Math.max(elapsed, 1e-9),
    latencyUs: {
      p50: pct(50),
      p90: pct(90),
      p99: pct(99),
      'p99.9': pct(99.9),
      max: any ? merged.maxValue : 0,
      min: any ? merged.minNonZeroValue : 0,
      mean: any ? Math.round(merged.mean) : 0,
    },
    curve,
    idle: { requested: options.idle, open: sum((r) => r.idleOpen), answered: idleAnswered },
    problems,
    ok: problems.length === 0 && errorCount === 0 && requests > 0,
  };
}

export function formatUs(us: number): string {
  if (us >= 1_000_000) return `${(us / 1_000_000).toFixed(2)}s`;
  if (us >= 1000) return `${(us / 1000).toFixed(2)}ms`;
  return `${us}µs`;
}

export function formatReport(r: BenchResult): string {
  const o = r.options;
  const mode = o.rate > 0 ? `open loop at ${o.rate} req/s` : `pipeline ${o.pipeline}`;
  const l = r.latencyUs;
  const lines = [
    `target      ${o.host}:${o.port} (${o.protocol}) "${o.command}"`,
    `load        ${o.connections} connections, ${mode}, ${o.threads} client thread(s)${o.idle ? `, ${o.idle} idle connections` : ''}`,
    `requests    ${r.requests} in ${r.elapsedSeconds.toFixed(2)} s = ${Math.round(r.rps)} req/s, errors ${r.errors}`,
    `latency     p50 ${formatUs(l.p50)}  p90 ${formatUs(l.p90)}  p99 ${formatUs(l.p99)}  p99.9 ${formatUs(l['p99.9'])}  max ${formatUs(l.max)}`,
  ];
  if (o.idle > 0)
    lines.push(
      `idle        ${r.idle.open} of ${o.idle} still open, ${r.idle.answered} answered after the run`,
    );
  for (const p of r.problems) lines.push(`problem     ${p}`);
  return lines.join('\n');
}
