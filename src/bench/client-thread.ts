// One load-generating thread of `tcpool bench`: its share of the connections, on its own event loop.
// Closed loop keeps `pipeline` requests in flight per connection; open loop (--rate) sends on a
// fixed schedule and measures latency from each request's intended send time, so a stalled server
// cannot hide behind requests that were never sent (coordinated omission).
import { createConnection, type Socket } from 'node:net';
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { scanReply } from '../protocol/resp-reply.ts';
import { encodeHistogram, newHistogram } from './histogram.ts';
import { type BenchPlan, type FromBenchThread, share, type ToBenchThread } from './plan.ts';

/** Bytes of one reply, or -1 when incomplete; errors are told by their first byte. */
function replyEnd(protocol: BenchPlan['protocol'], buf: Buffer, pos: number): number {
  if (protocol === 'resp') return scanReply(buf, pos);
  const nl = buf.indexOf(0x0a, pos);
  return nl === -1 ? -1 : nl + 1;
}
function isError(protocol: BenchPlan['protocol'], buf: Buffer, pos: number): boolean {
  return protocol === 'resp'
    ? buf[pos] === 0x2d
    : buf[pos] === 0x45 && buf.toString('latin1', pos, pos + 7) === 'ERROR: ';
}

/** Everything one thread measures; one per thread, created by the entry code at the bottom. */
class BenchThread {
  readonly plan: BenchPlan;
  private readonly port: MessagePort;
  readonly total = newHistogram();
  interval = newHistogram();
  done = 0;
  errors = 0;
  sent = 0;
  lastReplyAt = performance.now();
  stopSending = false;
  finished = false;
  readonly problems: string[] = [];
  readonly request: Buffer;
  /** n requests back to back, built once per n (the pipeline refills with the same few sizes). */
  private readonly batches: Buffer[] = [];
  private readonly clients: Client[] = [];
  /** Idle connections: opened first, each answers one request, then they sit through the run. */
  private readonly idleSockets: Socket[] = [];
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(plan: BenchPlan, port: MessagePort) {
    this.plan = plan;
    this.port = port;
    this.request = Buffer.from(plan.request, 'latin1');
  }

  private post(msg: FromBenchThread): void {
    this.port.postMessage(msg);
  }

  batch(n: number): Buffer {
    this.batches[n] ??= Buffer.concat(Array(n).fill(this.request));
    return this.batches[n];
  }

  problem(what: string): void {
    if (!this.problems.includes(what)) this.problems.push(what);
  }

  private outstanding(): number {
    return this.clients.reduce((n, c) => n + (c.closed ? 0 : c.outstanding), 0);
  }

  check(): void {
    if (this.finished) return;
    const quotaLeft = this.clients.reduce((n, c) => n + (c.closed ? 0 : c.quota), 0);
    const allClosed = this.clients.every((c) => c.closed);
    if ((this.outstanding() === 0 && (quotaLeft === 0 || this.stopSending)) || allClosed)
      this.finish();
  }

  /** Opens the idle connections, says ready, and runs once the coordinator says start. */
  async run(): Promise<void> {
    this.startTimers();
    this.port.on('message', (msg: ToBenchThread) => {
      if (msg.type === 'stop') {
        this.stopSending = true;
        this.check();
      }
    });
    await this.openIdle();
    this.post({ type: 'ready' });
    await new Promise<void>((resolve) =>
      this.port.once('message', (m: ToBenchThread) => m.type === 'start' && resolve()),
    );
    this.startClients();
  }

  private startTimers(): void {
    this.timers.push(
      setInterval(() => {
        this.post({
          type: 'progress',
          done: this.done,
          errors: this.errors,
          histogram: encodeHistogram(this.interval),
        });
        this.interval = newHistogram();
      }, 500),
      setInterval(() => {
        const outstanding = this.outstanding();
        if (outstanding > 0 && performance.now() - this.lastReplyAt > this.plan.stallMs) {
          this.problem(
            `stalled: no reply for ${this.plan.stallMs} ms with ${outstanding} request(s) outstanding`,
          );
          this.finish();
        }
      }, 100),
    );
  }

  private startClients(): void {
    const { plan } = this;
    this.lastReplyAt = performance.now();
    const start = performance.now();
    const every = plan.rate > 0 ? (1000 * plan.connections) / plan.rate : 0; // ms between sends per connection
    for (let i = 0; i < plan.connections; i++) {
      const c = new Client(this, share(plan.requests, plan.connections, i), () => {
        if (plan.rate === 0) c.fill();
      });
      c.nextDue = start + (every * i) / plan.connections; // spread the schedule over the connections
      this.clients.push(c);
    }
    if (plan.rate > 0) {
      this.timers.push(
        setInterval(() => {
          const now = performance.now();
          for (const c of this.clients) if (!c.closed) c.sendDue(now, every);
          this.check();
        }, 1),
      );
    }
    if (plan.connections === 0) this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    for (const t of this.timers) clearInterval(t);
    const idleOpen = this.idleSockets.filter((s) => !s.destroyed).length;
    void this.checkIdle().then((idleAnswered) => {
      for (const c of this.clients) c.socket.destroy();
      for (const s of this.idleSockets) s.destroy();
      this.post({
        type: 'done',
        histogram: encodeHistogram(this.total),
        done: this.done,
        sent: this.sent,
        errors: this.errors,
        problems: this.problems,
        idleOpen,
        idleAnswered,
      });
    });
  }

  private openIdle(): Promise<void> {
    let left = this.plan.idle;
    if (left === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const openBatch = (): void => {
        const batch = Math.min(left, 500);
        left -= batch;
        let settled = 0;
        for (let i = 0; i < batch; i++) {
          const s = createConnection({ host: this.plan.host, port: this.plan.port });
          this.idleSockets.push(s);
          let answered = false;
          const settle = (): void => {
            if (answered) return;
            answered = true;
            if (++settled === batch) left > 0 ? openBatch() : resolve();
          };
          s.on('connect', () => s.write(this.request));
          s.once('data', settle);
          s.on('error', (err) => {
            this.problem(`idle connection error: ${err.message}`);
            settle();
          });
          s.setTimeout(10_000, () => {
            this.problem('an idle connection got no reply within 10 s');
            s.destroy();
            settle();
          });
        }
      };
      openBatch();
    }).then(() => {
      for (const s of this.idleSockets) s.setTimeout(0);
    });
  }

  /** After the run: does every idle connection still answer? */
  private checkIdle(): Promise<number> {
    const live = this.idleSockets.filter((s) => !s.destroyed);
    if (live.length === 0) return Promise.resolve(0);
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
        s.write(this.request);
      }
    });
  }
}

class Client {
  readonly socket: Socket;
  private readonly thread: BenchThread;
  /** Send times (closed loop) or intended send times (open loop) of requests awaiting replies. */
  private readonly times: number[] = [];
  private head = 0;
  private pending: Buffer | null = null;
  quota: number;
  closed = false;
  nextDue = 0;

  constructor(thread: BenchThread, quota: number, onConnect: () => void) {
    this.thread = thread;
    this.quota = quota;
    const { host, port } = thread.plan;
    this.socket = createConnection({ host, port, noDelay: true });
    this.socket.on('connect', onConnect);
    this.socket.on('data', (chunk) => this.onData(chunk));
    this.socket.on('error', (err) => thread.problem(`connection error: ${err.message}`));
    this.socket.on('close', () => {
      this.closed = true;
      if (!thread.finished && (this.outstanding > 0 || this.quota > 0) && !thread.stopSending)
        thread.problem('the server closed a connection');
      thread.check();
    });
  }

  get outstanding(): number {
    return this.times.length - this.head;
  }

  /** Closed loop: top the pipeline up. */
  fill(): void {
    let n = 0;
    const now = performance.now();
    const { thread } = this;
    while (this.quota > 0 && this.outstanding < thread.plan.pipeline && !thread.stopSending) {
      this.times.push(now);
      this.quota--;
      n++;
    }
    this.send(n);
  }

  /** Open loop: send every request whose time has come, stamped with that time. */
  sendDue(now: number, every: number): void {
    let n = 0;
    while (this.nextDue <= now && this.quota > 0 && !this.thread.stopSending) {
      this.times.push(this.nextDue);
      this.nextDue += every;
      this.quota--;
      n++;
    }
    this.send(n);
  }

  private send(n: number): void {
    if (n === 0 || this.closed) return;
    const { thread } = this;
    thread.sent += n;
    this.socket.write(n <= 1024 ? thread.batch(n) : Buffer.concat(Array(n).fill(thread.request)));
  }

  private onData(chunk: Buffer): void {
    const { thread } = this;
    const { protocol } = thread.plan;
    const buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    let pos = 0;
    const now = performance.now();
    for (;;) {
      let end: number;
      try {
        end = replyEnd(protocol, buf, pos);
      } catch (err) {
        thread.problem(`unparsable reply: ${(err as Error).message}`);
        this.socket.destroy();
        return;
      }
      if (end === -1) break;
      if (isError(protocol, buf, pos)) thread.errors++;
      const started = this.times[this.head++];
      const us = Math.max(1, Math.round((now - started) * 1000));
      thread.total.recordValue(us);
      thread.interval.recordValue(us);
      thread.done++;
      pos = end;
    }
    if (this.head > 4096 && this.head * 2 > this.times.length) {
      this.times.splice(0, this.head);
      this.head = 0;
    }
    this.pending = pos < buf.length ? buf.subarray(pos) : null;
    thread.lastReplyAt = now;
    if (thread.plan.rate === 0) this.fill();
    thread.check();
  }
}

await new BenchThread(workerData as BenchPlan, parentPort!).run();
