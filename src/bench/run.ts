// `tcpool bench` coordinator: starts the client threads, shows live progress, merges their HDR
// histograms and reports. It never hangs: stalls and closed connections end the run with an error.
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as hdr from 'hdr-histogram-js';
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

export async function runBench(
  options: BenchOptions,
  onProgress?: (line: string) => void,
): Promise<BenchResult> {
  const request = encodeRequest(options.protocol, options.command).toString('latin1');
  const threads = Math.max(1, Math.min(options.threads, Math.max(options.connections, 1)));
  const workers: Worker[] = [];
  const results: Extract<FromBenchThread, { type: 'done' }>[] = [];
  let done = 0;
  let errors = 0;
  let windowHist = newHistogram();
  const doneByThread = new Array<number>(threads).fill(0);
  const errorsByThread = new Array<number>(threads).fill(0);

  const finished = new Promise<void>((resolve, reject) => {
    let ready = 0;
    for (let t = 0; t < threads; t++) {
      const plan: BenchPlan = {
        host: options.host,
        port: options.port,
        protocol: options.protocol,
        request,
        connections: share(options.connections, threads, t),
        pipeline: options.pipeline,
        requests: share(options.requests, threads, t),
        rate:
          options.rate === 0
            ? 0
            : (options.rate * share(options.connections, threads, t)) / options.connections,
        idle: share(options.idle, threads, t),
        idleCheck: true,
        stallMs: options.stallMs,
      };
      const w = new Worker(THREAD_URL, { workerData: plan });
      workers.push(w);
      w.on('message', (msg: FromBenchThread) => {
        if (msg.type === 'ready') {
          if (++ready === threads) startRun();
        } else if (msg.type === 'progress') {
          doneByThread[t] = msg.done;
          errorsByThread[t] = msg.errors;
          windowHist.add(hdr.decodeFromCompressedBase64(msg.histogram));
        } else {
          results.push(msg);
          if (results.length === threads) resolve();
        }
      });
      w.on('error', reject);
    }
  });

  let started = 0;
  let progressTimer: NodeJS.Timeout | undefined;
  let durationTimer: NodeJS.Timeout | undefined;
  let lastWindow = 0;
  function startRun(): void {
    started = performance.now();
    lastWindow = started;
    for (const w of workers) w.postMessage({ type: 'start' } satisfies ToBenchThread);
    if (options.duration > 0) {
      durationTimer = setTimeout(() => {
        for (const w of workers) w.postMessage({ type: 'stop' } satisfies ToBenchThread);
      }, options.duration * 1000);
    }
    if (onProgress) {
      let lastDone = 0;
      progressTimer = setInterval(() => {
        const now = performance.now();
        done = doneByThread.reduce((a, b) => a + b, 0);
        errors = errorsByThread.reduce((a, b) => a + b, 0);
        const rps = ((done - lastDone) * 1000) / Math.max(1, now - lastWindow);
        const p99 = windowHist.totalCount > 0 ? windowHist.getValueAtPercentile(99) : 0;
        onProgress(
          `elapsed ${((now - started) / 1000).toFixed(1)}s  requests ${done}  rps ${Math.round(rps)}  p99 ${formatUs(p99)}  errors ${errors}`,
        );
        lastDone = done;
        lastWindow = now;
        windowHist = newHistogram();
      }, 1000);
    }
  }

  try {
    await finished;
  } finally {
    clearInterval(progressTimer);
    clearTimeout(durationTimer);
    await Promise.all(workers.map((w) => w.terminate()));
  }
  const elapsed = (performance.now() - started) / 1000;
  const merged = newHistogram();
  for (const r of results) merged.add(hdr.decodeFromCompressedBase64(r.histogram));
  const requests = results.reduce((n, r) => n + r.done, 0);
  const errorCount = results.reduce((n, r) => n + r.errors, 0);
  const problems = [...new Set(results.flatMap((r) => r.problems))];
  const idleOpen = results.reduce((n, r) => n + r.idleOpen, 0);
  const idleAnswered = results.reduce((n, r) => n + r.idleAnswered, 0);
  const sent = results.reduce((n, r) => n + r.sent, 0);
  if (sent > requests && problems.length === 0)
    problems.push(`${sent - requests} request(s) never answered`);
  if (options.idle > 0 && idleAnswered < options.idle)
    problems.push(
      `only ${idleAnswered} of ${options.idle} idle connections answered after the run`,
    );
  const pct = (p: number) => (merged.totalCount > 0 ? merged.getValueAtPercentile(p) : 0);
  const curve: [number, number][] = [];
  for (const p of [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100])
    curve.push([p, pct(p)]);
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
      max: merged.totalCount > 0 ? merged.maxValue : 0,
      min: merged.totalCount > 0 ? merged.minNonZeroValue : 0,
      mean: merged.totalCount > 0 ? Math.round(merged.mean) : 0,
    },
    curve,
    idle: { requested: options.idle, open: idleOpen, answered: idleAnswered },
    problems,
    ok: problems.length === 0 && errorCount === 0 && requests > 0,
  };
}

function newHistogram() {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });
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
