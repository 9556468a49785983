// `tcpool bench --pubsub`: fan-out. `subscribers` RESP2 connections, spread over `channels`
// channels and over client threads, subscribe; one publisher pipelines PUBLISH round-robin over
// the channels; the figure is messages per second delivered to subscribers, from the first
// PUBLISH to the last message received. RESP only, so the same run works against redis-server
// (benchmarks/pubsub-fanout.ts measures both side by side). Like the request bench it never hangs:
// no progress for --stall-timeout, or a subscriber cut off, ends the run with a problem.
import { extname } from 'node:path';
import { createConnection, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { encodeRespRequest } from '../protocol/resp.ts';
import { share } from './plan.ts';

const THREAD_URL = new URL(
  `./subscriber-thread${extname(fileURLToPath(import.meta.url))}`,
  import.meta.url,
);

export interface PubSubOptions {
  host: string;
  port: number;
  subscribers: number;
  channels: number;
  /** Messages published in all (a multiple of `channels`: each channel gets as many). */
  messages: number;
  /** Bytes of each message. */
  payload: number;
  /** PUBLISH requests in flight on the publisher's connection. */
  pipeline: number;
  /** Subscriber threads. */
  threads: number;
  stallMs: number;
}

export interface PubSubResult {
  options: PubSubOptions;
  /** Messages published (each channel the same number). */
  published: number;
  /** Messages that reached subscribers, counted by the subscribers. */
  delivered: number;
  /** What would be delivered if every subscriber got every message of its channel. */
  expected: number;
  elapsedSeconds: number;
  deliveredPerSecond: number;
  publishedPerSecond: number;
  problems: string[];
  ok: boolean;
}

/** One subscriber thread's job: a channel per subscriber, and the frames it will receive. */
export interface SubscriberPlan {
  host: string;
  port: number;
  channels: string[];
  /** Bytes of one message frame on each channel (RESP2: *3 message <channel> <payload>). */
  frameBytes: Record<string, number>;
  perChannel: number;
}

export type FromSubscriberThread =
  | { t: 'subscribed' }
  | { t: 'progress'; delivered: number }
  | { t: 'done'; delivered: number }
  | { t: 'lost'; why: string };

export const channelName = (i: number): string => `bench:${i}`;

/** Bytes of a RESP2 message frame for `channel` with a `payload`-byte message. */
export const frameBytes = (channel: string, payload: number): number =>
  `*3\r\n$7\r\nmessage\r\n$${channel.length}\r\n${channel}\r\n$${payload}\r\n`.length + payload + 2;

export async function runPubSubBench(
  options: PubSubOptions,
  onProgress?: (line: string) => void,
): Promise<PubSubResult> {
  const channels = Array.from({ length: options.channels }, (_, i) => channelName(i));
  const perChannel = Math.floor(options.messages / options.channels);
  const published = perChannel * options.channels;
  const expected = perChannel * options.subscribers;
  const threads = Math.max(1, Math.min(options.threads, options.subscribers));
  const frames = Object.fromEntries(channels.map((c) => [c, frameBytes(c, options.payload)]));
  const problems: string[] = [];
  const deliveredBy = new Array<number>(threads).fill(0);
  let lastProgressAt = performance.now();
  let subscribed = 0;
  let done = 0;
  let wake = () => {};
  const workers: Worker[] = [];
  let next = 0; // subscriber i listens to channel i % channels, whichever thread holds it
  for (let t = 0; t < threads; t++) {
    const n = share(options.subscribers, threads, t);
    const mine = Array.from({ length: n }, () => channels[next++ % channels.length]);
    const w = new Worker(THREAD_URL, {
      workerData: {
        host: options.host,
        port: options.port,
        channels: mine,
        frameBytes: frames,
        perChannel,
      } satisfies SubscriberPlan,
    });
    w.on('message', (m: FromSubscriberThread) => {
      if (m.t === 'subscribed') subscribed++;
      else if (m.t === 'lost') {
        if (!problems.includes(m.why)) problems.push(m.why);
      } else {
        if (m.delivered > deliveredBy[t]) lastProgressAt = performance.now();
        deliveredBy[t] = m.delivered;
        if (m.t === 'done') done++;
      }
      wake();
    });
    w.on('error', (err) => problems.push(`subscriber thread failed: ${err.message}`));
    workers.push(w);
  }
  const delivered = () => deliveredBy.reduce((a, b) => a + b, 0);
  /** Until `ready()`, a problem, or no progress for the stall timeout; false unless ready. */
  const until = async (ready: () => boolean, what: string): Promise<boolean> => {
    lastProgressAt = performance.now();
    let last = -1;
    while (!ready()) {
      if (problems.length > 0) return false;
      const now = delivered() + subscribed;
      if (now !== last) {
        last = now;
        lastProgressAt = performance.now();
      }
      if (performance.now() - lastProgressAt > options.stallMs) {
        problems.push(`stalled: ${what} (no progress for ${options.stallMs} ms)`);
        return false;
      }
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 50);
      });
    }
    return true;
  };

  let started = performance.now();
  let finished = started;
  let publisher: Socket | null = null;
  let timer: NodeJS.Timeout | null = null;
  try {
    if (
      await until(
        () => subscribed === options.subscribers,
        `${subscribed} of ${options.subscribers} subscribed`,
      )
    ) {
      // Subscription counts reach the server's other workers a moment after the confirmation.
      await new Promise((r) => setTimeout(r, 200));
      if (onProgress)
        timer = setInterval(
          () =>
            onProgress(
              `delivered ${delivered()} of ${expected}  (${Math.round(delivered() / ((performance.now() - started) / 1000))} messages/s)`,
            ),
          1000,
        );
      started = performance.now();
      publisher = await connect(options.host, options.port);
      const errors = await publish(publisher, channels, perChannel, options, () => problems.length);
      if (errors !== null) problems.push(errors);
      else await until(() => done === threads, `${delivered()} of ${expected} delivered`);
      finished = performance.now();
    }
  } finally {
    if (timer !== null) clearInterval(timer);
    publisher?.destroy();
    for (const w of workers) w.postMessage('stop');
    await Promise.all(workers.map((w) => w.terminate()));
  }
  const seconds = Math.max((finished - started) / 1000, 1e-9);
  const total = delivered();
  if (total < expected && problems.length === 0)
    problems.push(`${expected - total} message(s) never delivered`);
  return {
    options,
    published,
    delivered: total,
    expected,
    elapsedSeconds: seconds,
    deliveredPerSecond: total / seconds,
    publishedPerSecond: published / seconds,
    problems,
    ok: problems.length === 0 && total === expected,
  };
}

function connect(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host, port });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/**
 * Publishes `perChannel` messages on each channel, round-robin, keeping `pipeline` requests in
 * flight; each reply is one line (an integer, or an error). Null, or what went wrong.
 */
async function publish(
  socket: Socket,
  channels: string[],
  perChannel: number,
  options: PubSubOptions,
  problems: () => number,
): Promise<string | null> {
  const body = Buffer.alloc(options.payload, 'x');
  const wire = channels.map((c) => encodeRespRequest(['PUBLISH', c, body]));
  const total = perChannel * channels.length;
  let replies = 0;
  let errors = 0;
  let atLineStart = true;
  let closed: string | null = null;
  let wake = () => {};
  socket.on('data', (d: Buffer) => {
    for (const b of d) {
      if (atLineStart && b === 0x2d) errors++; // "-ERR …"
      atLineStart = b === 0x0a;
      if (atLineStart) replies++;
    }
    wake();
  });
  socket.on('close', () => {
    closed = 'the publisher connection closed';
    wake();
  });
  let sent = 0;
  let lastReply = performance.now();
  let seen = 0;
  while (replies < total) {
    if (closed !== null) return closed;
    if (problems() > 0) return null;
    if (errors > 0) return `${errors} PUBLISH error repl${errors === 1 ? 'y' : 'ies'}`;
    const room = Math.min(options.pipeline - (sent - replies), total - sent);
    if (room > 0) {
      const batch: Buffer[] = [];
      for (let i = 0; i < room; i++, sent++) batch.push(wire[sent % channels.length]);
      socket.write(Buffer.concat(batch));
    }
    if (replies !== seen) {
      seen = replies;
      lastReply = performance.now();
    } else if (performance.now() - lastReply > options.stallMs)
      return `stalled: no PUBLISH reply for ${options.stallMs} ms`;
    await new Promise<void>((r) => {
      wake = r;
      setTimeout(r, 50);
    });
  }
  return errors > 0 ? `${errors} PUBLISH error repl${errors === 1 ? 'y' : 'ies'}` : null;
}

export function formatPubSubReport(r: PubSubResult): string {
  const o = r.options;
  const lines = [
    `target      ${o.host}:${o.port} (resp) PUBLISH`,
    `load        ${o.subscribers} subscribers on ${o.channels} channel(s), ${o.threads} subscriber thread(s); 1 publisher, pipeline ${o.pipeline}`,
    `published   ${r.published} messages of ${o.payload} bytes = ${Math.round(r.publishedPerSecond)} messages/s`,
    `delivered   ${r.delivered} of ${r.expected} in ${r.elapsedSeconds.toFixed(2)} s = ${Math.round(r.deliveredPerSecond)} messages/s`,
  ];
  for (const p of r.problems) lines.push(`problem     ${p}`);
  return lines.join('\n');
}
