// A pooled tcpool client: `size` connections, each pipelining; a call goes to the connection with
// the fewest replies outstanding. What happens to a call, documented once:
//   - more than `maxQueue` calls outstanding: refused at once (ERR_CLIENT_QUEUE_FULL);
//   - no connection is up: it waits for one (reconnects run with backoff and jitter), bounded by
//     its timeout (ERR_CLIENT_TIMEOUT);
//   - written, then the connection drops: it fails (ERR_CLIENT_CONNECTION_LOST) and is not
//     retried, since it may have run; the caller decides;
//   - no reply within its timeout: it fails (ERR_CLIENT_TIMEOUT); a late reply is dropped.
// So no call waits longer than its timeout.
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { ClientConnection, type LinkOptions, type Pending } from './connection.ts';
import { ClientError, clientErrors } from './errors.ts';
import { type PushMessage, ServerError } from './reply-decoder.ts';
import { monotonicMs } from '../stats/clock.ts';

export interface ClientOptions {
  port: number;
  host?: string;
  /** TLS: true, or node:tls options (ca, servername, cert/key for mutual TLS). */
  tls?: boolean | TlsOptions;
  /** The AUTH token (sent with HELLO 3 … AUTH default <token>). */
  password?: string;
  /** CLIENT SETNAME for every connection. */
  name?: string;
  /** Connections in the pool (default 4). */
  size?: number;
  /** Calls outstanding at once, waiting or in flight, before more are refused (default 100000). */
  maxQueue?: number;
  /** Milliseconds a call may take, waiting for a connection included (default 5000). */
  timeoutMs?: number;
  /** Milliseconds a connection attempt and its HELLO may take (default 5000). */
  connectTimeoutMs?: number;
  /** Reconnect backoff: the delay doubles from `minDelayMs` to `maxDelayMs`, with jitter. */
  reconnect?: { minDelayMs?: number; maxDelayMs?: number };
  /** Bulk strings as Buffers instead of UTF-8 strings. */
  buffers?: boolean;
}

/** What a call's arguments may be: a list is spread, an object becomes key=value words. */
export type Arg =
  | string
  | number
  | Buffer
  | readonly Arg[]
  | { [key: string]: unknown }
  | undefined;

export interface CallOptions {
  timeoutMs?: number;
  /** Internal: RESP3 confirmations (push frames) that answer this command, e.g. SUBSCRIBE's. */
  confirmations?: number;
}

interface Waiting {
  args: (string | Buffer | number)[];
  p: Pending;
}

export class Client {
  private readonly link: LinkOptions;
  private readonly slots: (ClientConnection | null)[];
  private readonly attempts: number[];
  private readonly timers: (NodeJS.Timeout | null)[];
  private waiting: Waiting[] = [];
  private waitingHead = 0;
  private outstanding = 0;
  private closing = false;
  private readonly sweep: NodeJS.Timeout;
  private readonly sweepEvery: number;
  private readyWaiters: (() => void)[] = [];
  private readonly pushHandlers = new Set<(msg: PushMessage) => void>();
  readonly options: Required<Omit<ClientOptions, 'tls' | 'password' | 'name' | 'reconnect'>> & {
    minDelayMs: number;
    maxDelayMs: number;
  };

  /** Called when a connection comes back after it was lost (the subscriber re-subscribes). */
  onReconnect: (() => void) | null = null;
  private readonly constructorOptions: ClientOptions;

  constructor(options: ClientOptions) {
    this.constructorOptions = options;
    const size = options.size ?? 4;
    const check = (name: string, v: number, min: number) => {
      if (!Number.isInteger(v) || v < min)
        throw new TypeError(`tcpool/client: ${name} must be an integer of at least ${min}`);
    };
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535)
      throw new TypeError('tcpool/client: port must be an integer from 1 to 65535');
    this.options = {
      port: options.port,
      host: options.host ?? '127.0.0.1',
      size,
      maxQueue: options.maxQueue ?? 100_000,
      timeoutMs: options.timeoutMs ?? 5000,
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
      buffers: options.buffers ?? false,
      minDelayMs: options.reconnect?.minDelayMs ?? 50,
      maxDelayMs: options.reconnect?.maxDelayMs ?? 2000,
    };
    check('size', size, 1);
    check('maxQueue', this.options.maxQueue, 1);
    check('timeoutMs', this.options.timeoutMs, 1);
    check('connectTimeoutMs', this.options.connectTimeoutMs, 1);
    this.link = {
      host: this.options.host,
      port: this.options.port,
      tls: options.tls ?? false,
      password: options.password ?? null,
      name: options.name ?? null,
      connectTimeoutMs: this.options.connectTimeoutMs,
      buffers: this.options.buffers,
    };
    this.slots = Array.from({ length: size }, () => null);
    this.attempts = Array.from({ length: size }, () => 0);
    this.timers = Array.from({ length: size }, () => null);
    for (let i = 0; i < size; i++) this.open(i);
    // One coarse timer for every deadline, instead of a timer per call.
    this.sweepEvery = Math.max(5, Math.min(100, Math.floor(this.options.timeoutMs / 5)));
    this.sweep = setInterval(() => this.expire(monotonicMs()), this.sweepEvery);
    this.sweep.unref();
  }

  /** Connections up now. */
  get connected(): number {
    return this.slots.filter((c) => c?.state === 'ready').length;
  }

  /** Resolves once at least one connection is up (or rejects after `timeoutMs`). */
  ready(timeoutMs = this.options.connectTimeoutMs): Promise<void> {
    if (this.connected > 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new ClientError(
              clientErrors.connect,
              `no connection to ${this.link.host}:${this.link.port} within ${timeoutMs} ms`,
            ),
          ),
        timeoutMs,
      );
      this.readyWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Sends one command: `call('GREET', 'ann')`. Resolves to the decoded reply; rejects with ServerError or ClientError. */
  call(name: string, ...args: Arg[]): Promise<unknown> {
    return this.callWith({}, name, ...args);
  }

  callWith(options: CallOptions, name: string, ...args: Arg[]): Promise<unknown> {
    if (this.closing)
      return Promise.reject(new ClientError(clientErrors.closed, 'the client was closed'));
    if (this.outstanding >= this.options.maxQueue)
      return Promise.reject(
        new ClientError(clientErrors.queueFull, `${this.outstanding} calls outstanding (maxQueue)`),
      );
    const words: (string | Buffer | number)[] = [name];
    for (const a of args) flatten(a, words);
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    // A timeout much shorter than the sweep's period gets a timer of its own.
    if (timeoutMs < this.sweepEvery * 2)
      setTimeout(() => this.expire(monotonicMs()), timeoutMs).unref();
    this.outstanding++;
    return new Promise((resolve, reject) => {
      const p: Pending = {
        resolve: (v) => {
          this.outstanding--;
          resolve(v);
        },
        reject: (e) => {
          this.outstanding--;
          reject(e);
        },
        deadline: monotonicMs() + timeoutMs,
        settled: false,
        confirmations: options.confirmations,
      };
      const conn = this.pick();
      if (conn !== null) conn.send(words, p);
      else {
        this.waiting.push({ args: words, p });
        for (const t of this.timers) t?.ref();
      }
    });
  }

  /** Receives RESP3 push messages (pub/sub) from any connection of the pool. */
  onPush(handler: (msg: PushMessage) => void): () => void {
    this.pushHandlers.add(handler);
    return () => this.pushHandlers.delete(handler);
  }

  /**
   * Subscribes to a channel: `handler(message, channel)` gets each message published to it, from
   * any worker, in publish order. Subscriptions use one connection of their own, made on first
   * use and subscribed again after a reconnect (messages published while it is down are lost, as
   * with Redis). Resolves once subscribed; the function it returns unsubscribes.
   */
  async subscribe(
    channel: string,
    handler: (message: string | Buffer, channel: string) => void,
  ): Promise<() => Promise<void>> {
    let handlers = this.channelHandlers.get(channel);
    if (handlers === undefined) {
      handlers = new Set();
      this.channelHandlers.set(channel, handlers);
    }
    handlers.add(handler);
    if (handlers.size === 1)
      await this.subscriber().callWith({ confirmations: 1 }, 'SUBSCRIBE', channel);
    return async () => {
      handlers.delete(handler);
      if (handlers.size > 0 || this.channelHandlers.get(channel) !== handlers) return;
      this.channelHandlers.delete(channel);
      await this.subscriber().callWith({ confirmations: 1 }, 'UNSUBSCRIBE', channel);
    };
  }

  private readonly channelHandlers = new Map<
    string,
    Set<(m: string | Buffer, ch: string) => void>
  >();
  private subscriberClient: Client | null = null;

  /**
   * The pool of one that carries subscriptions (a RESP3 connection: pushes, commands still run).
   */
  private subscriber(): Client {
    if (this.subscriberClient !== null) return this.subscriberClient;
    const sub = new Client({ ...this.constructorOptions, size: 1 });
    sub.onPush((msg) => {
      const [kind, channel, message] = msg.items as [string, string, string | Buffer];
      if (kind !== 'message') return;
      for (const h of this.channelHandlers.get(channel) ?? []) h(message, channel);
    });
    sub.onReconnect = () => {
      const channels = [...this.channelHandlers.keys()];
      if (channels.length > 0)
        void sub
          .callWith({ confirmations: channels.length }, 'SUBSCRIBE', ...channels)
          .catch(() => {});
    };
    this.subscriberClient = sub;
    return sub;
  }

  /** Closes every connection; outstanding calls fail with ERR_CLIENT_CLOSED. */
  async close(): Promise<void> {
    this.closing = true;
    await this.subscriberClient?.close();
    clearInterval(this.sweep);
    for (const t of this.timers) if (t !== null) clearTimeout(t);
    for (const c of this.slots) c?.close();
    this.failWaiting(new ClientError(clientErrors.closed, 'the client was closed'));
  }

  /** The ready connection with the fewest replies outstanding. */
  private pick(): ClientConnection | null {
    let best: ClientConnection | null = null;
    for (const c of this.slots) {
      if (c === null || c.state !== 'ready') continue;
      if (best === null || c.inFlight < best.inFlight) best = c;
      if (best.inFlight === 0) break;
    }
    return best;
  }

  private open(i: number): void {
    this.timers[i] = null;
    if (this.closing) return;
    this.slots[i] = new ClientConnection(this.link, {
      ready: (conn) => {
        if (this.attempts[i] > 0) this.onReconnect?.();
        this.attempts[i] = 0;
        this.drainWaiting(conn);
        const waiters = this.readyWaiters;
        this.readyWaiters = [];
        for (const w of waiters) w();
      },
      push: (msg) => {
        for (const h of this.pushHandlers) h(msg);
      },
      close: (conn, err) => {
        if (this.slots[i] !== conn) return;
        this.slots[i] = null;
        if (this.closing) return;
        // A refused AUTH will not get better by waiting: callers learn it at once.
        if (err instanceof ServerError && this.connected === 0) this.failWaiting(err);
        const n = this.attempts[i]++;
        const cap = Math.min(
          this.options.maxDelayMs,
          this.options.minDelayMs * 2 ** Math.min(n, 20),
        );
        // Equal jitter: half fixed, half random, so a restarted server is not hit all at once.
        const delay = cap / 2 + Math.random() * (cap / 2);
        const timer = setTimeout(() => this.open(i), n === 0 ? 0 : delay);
        // An idle client does not keep the process alive while it waits to reconnect.
        if (this.outstanding === 0) timer.unref();
        this.timers[i] = timer;
      },
    });
  }

  private drainWaiting(conn: ClientConnection): void {
    while (this.waitingHead < this.waiting.length) {
      const w = this.waiting[this.waitingHead];
      this.waiting[this.waitingHead++] = undefined as never;
      if (w.p.settled) continue;
      (this.pick() ?? conn).send(w.args, w.p);
    }
    this.waiting.length = 0;
    this.waitingHead = 0;
  }

  private failWaiting(err: Error): void {
    for (let i = this.waitingHead; i < this.waiting.length; i++) {
      const { p } = this.waiting[i];
      if (p.settled) continue;
      p.settled = true;
      p.reject(err);
    }
    this.waiting.length = 0;
    this.waitingHead = 0;
  }

  private expire(now: number): void {
    for (const c of this.slots) c?.expire(now);
    if (this.waiting.length === this.waitingHead) return;
    for (let i = this.waitingHead; i < this.waiting.length; i++) {
      const { p } = this.waiting[i];
      if (!p.settled && p.deadline <= now) {
        p.settled = true;
        p.reject(
          new ClientError(clientErrors.timeout, 'no connection to the server came up in time'),
        );
      }
    }
    // Drop what expired, so a long outage cannot grow the queue past maxQueue.
    this.waiting = this.waiting.slice(this.waitingHead).filter((w) => !w.p.settled);
    this.waitingHead = 0;
  }
}

/**
 * Arguments as words: lists spread, { ttl: 5 } → "ttl=5", undefined (a left-out optional) dropped.
 */
function flatten(a: Arg, out: (string | Buffer | number)[]): void {
  if (a === undefined) return;
  if (typeof a === 'string' || typeof a === 'number' || Buffer.isBuffer(a)) out.push(a);
  else if (Array.isArray(a)) for (const x of a) flatten(x, out);
  else
    for (const [k, v] of Object.entries(a as Record<string, unknown>))
      if (v !== undefined) out.push(`${k}=${Buffer.isBuffer(v) ? v.toString('utf8') : String(v)}`);
}
