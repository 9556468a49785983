// `tcpool bench --connect-rate`: accept throughput. Each of --connections loops opens a
// connection, sends one request, waits for its reply and closes (FIN), then starts again; the
// result is connections per second and the latency from connect() to the first reply (accept,
// admission, the first read and the reply). One client thread: past a few thousand connections
// per second the client's own connect() cost is part of the figure, so compare servers with it
// rather than read it as the server's ceiling.
import { createConnection } from 'node:net';
import { performance } from 'node:perf_hooks';
import { type BenchOptions, encodeRequest } from './plan.ts';

export interface ConnectRateResult {
  options: BenchOptions;
  /** Connections that got their reply. */
  connections: number;
  /** failed + errorReplies. */
  errors: number;
  /**
   * Connections that never got a reply: refused, reset, closed before it, or no reply within
   * --stall-timeout.
   */
  failed: number;
  /** Connections the server answered with an error reply (a `-` line, or `ERROR:`). */
  errorReplies: number;
  /** How many of each failure: the socket error's code, or what happened ("error reply" …). */
  reasons: Record<string, number>;
  /** The first few distinct failures, for the report. */
  problems: string[];
  elapsedSeconds: number;
  perSecond: number;
  /** Connect to first reply, microseconds. */
  latencyUs: { p50: number; p90: number; p99: number; max: number };
  ok: boolean;
}

/** The server answered, with an error: counted apart from connections that failed. */
class ErrorReply extends Error {}

/** One connection: connect, request, first reply, close; resolves with the latency in µs. */
function once(o: BenchOptions, request: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const socket = createConnection({ host: o.host, port: o.port, noDelay: true });
    let latency = -1;
    const timer = setTimeout(
      () => socket.destroy(new Error(`no reply within ${o.stallMs} ms`)),
      o.stallMs,
    );
    socket.once('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      if (latency >= 0 || chunk.indexOf(0x0a) === -1) return;
      latency = (performance.now() - start) * 1000;
      if (chunk[0] === 0x2d || chunk.subarray(0, 6).toString('latin1') === 'ERROR:')
        socket.destroy(new ErrorReply(`error reply: ${chunk.toString('latin1').trim()}`));
      else socket.end();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (latency >= 0) resolve(latency);
      else reject(new Error('closed before its reply'));
    });
  });
}

const percentile = (sorted: Float64Array, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

/**
 * Runs the connect loops until --requests connections were made, --duration passed, or `signal`
 * is aborted (a program's own stop: the resize storm runs it while it resizes); connections under
 * way when it stops are finished and counted.
 */
export async function runConnectRate(
  o: BenchOptions,
  signal?: AbortSignal,
): Promise<ConnectRateResult> {
  const request = encodeRequest(o.protocol, o.command);
  const limit = o.requests === Infinity ? Number.MAX_SAFE_INTEGER : o.requests;
  const deadline = o.duration > 0 ? performance.now() + o.duration * 1000 : Infinity;
  const latencies: number[] = [];
  const problems = new Set<string>();
  const reasons: Record<string, number> = {};
  let started = 0;
  let failed = 0;
  let errorReplies = 0;
  const t0 = performance.now();
  const loop = async (): Promise<void> => {
    while (started < limit && performance.now() < deadline && !signal?.aborted) {
      started++;
      try {
        latencies.push(await once(o, request));
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        const reason = e instanceof ErrorReply ? 'error reply' : (e.code ?? e.message);
        if (e instanceof ErrorReply) errorReplies++;
        else failed++;
        reasons[reason] = (reasons[reason] ?? 0) + 1;
        if (problems.size < 5) problems.add(e.code ?? e.message);
      }
    }
  };
  await Promise.all(Array.from({ length: o.connections }, loop));
  const elapsed = (performance.now() - t0) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  const errors = failed + errorReplies;
  return {
    options: o,
    connections: latencies.length,
    errors,
    failed,
    errorReplies,
    reasons,
    problems: [...problems],
    elapsedSeconds: elapsed,
    perSecond: latencies.length / elapsed,
    latencyUs: {
      p50: percentile(sorted, 0.5),
      p90: percentile(sorted, 0.9),
      p99: percentile(sorted, 0.99),
      max: sorted.length === 0 ? 0 : sorted[sorted.length - 1],
    },
    ok: errors === 0 && latencies.length > 0,
  };
}

export function formatConnectRate(r: ConnectRateResult): string {
  const o = r.options;
  const us = (v: number): string =>
    v >= 1000 ? `${(v / 1000).toFixed(2)} ms` : `${v.toFixed(0)} µs`;
  const l = r.latencyUs;
  const lines = [
    `target      ${o.host}:${o.port} (${o.protocol}) "${o.command}", a new connection each time`,
    `load        ${o.connections} concurrent connect loops`,
    `connections ${r.connections} in ${r.elapsedSeconds.toFixed(2)} s = ${Math.round(r.perSecond)} conn/s, errors ${r.errors} (failed connects ${r.failed}, error replies ${r.errorReplies})`,
    `latency     connect to first reply: p50 ${us(l.p50)}  p90 ${us(l.p90)}  p99 ${us(l.p99)}  max ${us(l.max)}`,
  ];
  const reasons = Object.entries(r.reasons).map(([why, n]) => `${why} ×${n}`);
  if (reasons.length > 0) lines.push(`failures    ${reasons.join('; ')}`);
  if (r.problems.length > 0) lines.push(`problems    ${r.problems.join('; ')}`);
  return lines.join('\n');
}
