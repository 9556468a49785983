// One load-generating thread of `tcpool bench`: its share of the connections, on its own event loop.
// Closed loop keeps `pipeline` requests in flight per connection; open loop (--rate) sends on a
// fixed schedule and measures latency from each request's intended send time, so a stalled server
// cannot hide behind requests that were never sent (coordinated omission).
import { createConnection, type Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import * as hdr from 'hdr-histogram-js';
import { scanReply } from '../protocol/resp-reply.ts';
import { type BenchPlan, type FromBenchThread, share, type ToBenchThread } from './plan.ts';

const plan = workerData as BenchPlan;
const port = parentPort!;
const post = (msg: FromBenchThread): void => port.postMessage(msg);

const newHistogram = () =>
  hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });
const total = newHistogram();
let interval = newHistogram();
let done = 0;
let errors = 0;
let sent = 0;
let lastReplyAt = performance.now();
let stopSending = false;
let finished = false;
const problems: string[] = [];
const request = Buffer.from(plan.request, 'latin1');
/** n requests back to back, built once per n (the pipeline refills with the same few sizes). */
const batches: Buffer[] = [];
function batch(n: number): Buffer {
  batches[n] ??= Buffer.concat(Array(n).fill(request));
  return batches[n];
}

/** Bytes of one reply, or -1 when incomplete; errors are told by their first byte. */
function replyEnd(buf: Buffer, pos: number): number {
  if (plan.protocol === 'resp') return scanReply(buf, pos);
  const nl = buf.indexOf(0x0a, pos);
  return nl === -1 ? -1 : nl + 1;
}
function isError(buf: Buffer, pos: number): boolean {
  return plan.protocol === 'resp'
    ? buf[pos] === 0x2d
    : buf[pos] === 0x45 && buf.toString('latin1', pos, pos + 7) === 'ERROR: ';
}

class Client {
  readonly socket: Socket;
  /** Send times (closed loop) or intended send times (open loop) of requests awaiting replies. */
  private readonly times: number[] = [];
  private head = 0;
  private pending: Buffer | null = null;
  quota: number;
  closed = false;
  nextDue = 0;

  constructor(quota: number, onConnect: () => void) {
    this.quota = quota;
    this.socket = createConnection({ host: plan.host, port: plan.port, noDelay: true });
    this.socket.on('connect', onConnect);
    this.socket.on('data', (chunk) => this.onData(chunk));
    this.socket.on('error', (err) => problem(`connection error: ${err.message}`));
    this.socket.on('close', () => {
      this.closed = true;
      if (!finished && (this.outstanding > 0 || this.quota > 0) && !stopSending)
        problem('the server closed a connection');
      check();
    });
  }

  get outstanding(): number {
    return this.times.length - this.head;
  }

  /** Closed loop: top the pipeline up. */
  fill(): void {
    let n = 0;
    const now = performance.now();
    while (this.quota > 0 && this.outstanding < plan.pipeline && !stopSending) {
      this.times.push(now);
      this.quota--;
      n++;
    }
    this.send(n);
  }

  /** Open loop: send every request whose time has come, stamped with that time. */
  sendDue(now: number, every: number): void {
    let n = 0;
    while (this.nextDue <= now && this.quota > 0 && !stopSending) {
      this.times.push(this.nextDue);
      this.nextDue += every;
      this.quota--;
      n++;
    }
    this.send(n);
  }

  private send(n: number): void {
    if (n === 0 || this.closed) return;
    sent += n;
    this.socket.write(n <= 1024 ? batch(n) : Buffer.concat(Array(n).fill(request)));
  }

  private onData(chunk: Buffer): void {
    const buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    let pos = 0;
    const now = performance.now();
    for (;;) {
      let end: number;
      try {
        end = replyEnd(buf, pos);
      } catch (err) {
        problem(`unparsable reply: ${(err as Error).message}`);
        this.socket.destroy();
        return;
      }
      if (end === -1) break;
      if (isError(buf, pos)) errors++;
      const started = this.times[this.head++];
      const us = Math.max(1, Math.round((now - started) * 1000));
      total.recordValue(us);
      interval.recordValue(us);
      done++;
      pos = end;
    }
    if (this.head > 4096 && this.head * 2 > this.times.length) {
      this.times.splice(0, this.head);
      this.head = 0;
    }
    this.pending = pos < buf.length ? buf.subarray(pos) : null;
    lastReplyAt = now;
    if (plan.rate === 0) this.fill();
    check();
  }
}

function problem(what: string): void {
  if (!problems.includes(what)) problems.push(what);
}

const clients: Client[] = [];

function check(): void {
  if (finished) return;
  const outstanding = clients.reduce((n, c) => n + (c.closed ? 0 : c.outstanding), 0);
  const quotaLeft = clients.reduce((n, c) => n + (c.closed ? 0 : c.quota), 0);
  const allClosed = clients.every((c) => c.closed);
  if ((outstanding === 0 && (quotaLeft === 0 || stopSending)) || allClosed) finish();
}

function finish(): void {
  if (finished) return;
  finished = true;
  clearInterval(progressTimer);
  clearInterval(stallTimer);
  if (rateTimer !== null) clearInterval(rateTimer);
  const idleOpen = idleSockets.filter((s) => !s.destroyed).length;
  void checkIdle().then((idleAnswered) => {
    for (const c of clients) c.socket.destroy();
    for (const s of idleSockets) s.destroy();
    post({
      type: 'done',
      histogram: hdr.encodeIntoCompressedBase64(total),
      done,
      sent,
      errors,
      problems,
      idleOpen,
      idleAnswered,
    });
  });
}

// Idle connections: opened first, each answers one request, then they sit through the run.
const idleSockets: Socket[] = [];

function openIdle(): Promise<void> {
  let left = plan.idle;
  if (left === 0) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const openBatch = (): void => {
      const batch = Math.min(left, 500);
      left -= batch;
      let settled = 0;
      for (let i = 0; i < batch; i++) {
        const s = createConnection({ host: plan.host, port: plan.port });
        idleSockets.push(s);
        let answered = false;
        const settle = (): void => {
          if (answered) return;
          answered = true;
          if (++settled === batch) left > 0 ? openBatch() : resolve();
        };
        s.on('connect', () => s.write(request));
        s.once('data', settle);
        s.on('error', (err) => {
          problem(`idle connection error: ${err.message}`);
          settle();
        });
        s.setTimeout(10_000, () => {
          problem('an idle connection got no reply within 10 s');
          s.destroy();
          settle();
        });
      }
    };
    openBatch();
  }).then(() => {
    for (const s of idleSockets) s.setTimeout(0);
  });
}

/** After the run: does every idle connection still answer? */
function checkIdle(): Promise<number> {
  const live = idleSockets.filter((s) => !s.destroyed);
  if (live.length === 0 || !plan.idleCheck) return Promise.resolve(0);
  return new Promise((resolve) => {
    let answered = 0;
    const timer = setTimeout(() => resolve(answered), 5000);
    for (const s of live) {
      s.once('data', () => {
        if (++answered === live.length) {
          clearTimeout(timer);
          resolve(answered);
        }
      });
      s.write(request);
    }
  });
}

let rateTimer: NodeJS.Timeout | null = null;
const progressTimer = setInterval(() => {
  post({ type: 'progress', done, errors, histogram: hdr.encodeIntoCompressedBase64(interval) });
  interval = newHistogram();
}, 500);
const stallTimer = setInterval(() => {
  const outstanding = clients.reduce((n, c) => n + (c.closed ? 0 : c.outstanding), 0);
  if (outstanding > 0 && performance.now() - lastReplyAt > plan.stallMs) {
    problem(`stalled: no reply for ${plan.stallMs} ms with ${outstanding} request(s) outstanding`);
    finish();
  }
}, 100);

port.on('message', (msg: ToBenchThread) => {
  if (msg.type === 'stop') {
    stopSending = true;
    check();
  }
});

await openIdle();
post({ type: 'ready' });
await new Promise<void>((resolve) =>
  port.once('message', (m: ToBenchThread) => m.type === 'start' && resolve()),
);
lastReplyAt = performance.now();
const start = performance.now();
const every = plan.rate > 0 ? (1000 * plan.connections) / plan.rate : 0; // ms between sends per connection
for (let i = 0; i < plan.connections; i++) {
  const c = new Client(share(plan.requests, plan.connections, i), () => {
    if (plan.rate === 0) c.fill();
  });
  c.nextDue = start + (every * i) / plan.connections; // spread the schedule over the connections
  clients.push(c);
}
if (plan.rate > 0) {
  rateTimer = setInterval(() => {
    const now = performance.now();
    for (const c of clients) if (!c.closed) c.sendDue(now, every);
    check();
  }, 1);
}
if (plan.connections === 0) finish();
