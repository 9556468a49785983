// One client connection: connects (TCP or TLS), says HELLO 3 (with AUTH when a password is set),
// then pipelines: every command is written as soon as it is issued, the writes of one tick leave
// together, and replies are matched to commands in order.
import { createConnection, type Socket } from 'node:net';
import { type ConnectionOptions as TlsOptions, connect as tlsConnect } from 'node:tls';
import { ClientError, clientErrors } from './errors.ts';
import { INCOMPLETE, PushMessage, ReplyDecoder, ServerError } from './reply-decoder.ts';
import { monotonicMs } from '../stats/clock.ts';

export interface LinkOptions {
  host: string;
  port: number;
  /** TLS: true, or node:tls options (ca, servername, cert/key for mutual TLS). */
  tls: boolean | TlsOptions;
  /** AUTH: the token (user "default"). */
  password: string | null;
  /** CLIENT SETNAME on connect. */
  name: string | null;
  connectTimeoutMs: number;
  buffers: boolean;
}

/** A command in flight; `settled` once answered, timed out or failed. */
export interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  deadline: number;
  settled: boolean;
  /** RESP3 answers (UN)SUBSCRIBE with a push per channel, not a reply: how many to wait for. */
  confirmations?: number;
}

const CONFIRMATIONS = new Set(['subscribe', 'unsubscribe', 'psubscribe', 'punsubscribe']);

type State = 'connecting' | 'ready' | 'closed';

export class ClientConnection {
  state: State = 'connecting';
  readonly pending: Pending[] = [];
  /** Index of the first pending entry still waiting for its reply (a queue as array + index). */
  private head = 0;
  private readonly socket: Socket;
  private readonly decoder: ReplyDecoder;
  private out: (string | Buffer)[] = [];
  private flushScheduled = false;
  private readonly onPush: (msg: PushMessage) => void;
  private readonly onClose: (conn: ClientConnection, err: Error | null) => void;
  private failure: Error | null = null;

  constructor(
    options: LinkOptions,
    events: {
      ready: (conn: ClientConnection) => void;
      push: (msg: PushMessage) => void;
      close: (conn: ClientConnection, err: Error | null) => void;
    },
  ) {
    this.onPush = events.push;
    this.onClose = events.close;
    this.decoder = new ReplyDecoder({ buffers: options.buffers });
    const { host, port } = options;
    this.socket =
      options.tls === false
        ? createConnection({ host, port, noDelay: true })
        : tlsConnect({
            host,
            port,
            servername: host,
            ...(options.tls === true ? {} : options.tls),
          });
    this.socket.setNoDelay(true);
    const timer = setTimeout(() => {
      this.fail(new ClientError(clientErrors.connect, `connect to ${host}:${port} timed out`));
    }, options.connectTimeoutMs);
    this.socket.once(options.tls === false ? 'connect' : 'secureConnect', () => {
      clearTimeout(timer);
      this.handshake(options).then(
        () => {
          if (this.state !== 'connecting') return;
          this.state = 'ready';
          events.ready(this);
        },
        (err: Error) => this.fail(err),
      );
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => {
      clearTimeout(timer);
      this.fail(err);
    });
    this.socket.on('close', () => {
      clearTimeout(timer);
      this.closed();
    });
  }

  /** Commands written and not answered yet. */
  get inFlight(): number {
    return this.pending.length - this.head;
  }

  private async handshake(options: LinkOptions): Promise<void> {
    const hello = ['HELLO', '3'];
    if (options.password !== null) hello.push('AUTH', 'default', options.password);
    if (options.name !== null) hello.push('SETNAME', options.name);
    const deadline = monotonicMs() + options.connectTimeoutMs;
    await new Promise((resolve, reject) =>
      this.send(hello, { resolve, reject, deadline, settled: false }),
    );
  }

  /** Writes a command; its reply settles `p`. The writes of one tick go out as one. */
  send(args: readonly (string | Buffer | number)[], p: Pending): void {
    this.pending.push(p);
    let text = `*${args.length}\r\n`;
    for (const a of args) {
      if (Buffer.isBuffer(a)) {
        this.out.push(`${text}$${a.length}\r\n`, a);
        text = '\r\n';
      } else {
        const s = typeof a === 'string' ? a : String(a);
        text += `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
      }
    }
    this.out.push(text);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const out = this.out;
    this.out = [];
    if (this.state === 'closed' || out.length === 0) return;
    if (out.every((p) => typeof p === 'string')) this.socket.write(out.join(''));
    else
      this.socket.write(
        Buffer.concat(out.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))),
      );
  }

  private onData(chunk: Buffer): void {
    this.decoder.push(chunk);
    // A reply after its call's deadline is a timeout, even when the timer has not fired yet (a
    // busy event loop runs I/O before late timers): read the clock once per chunk.
    let now = 0;
    for (;;) {
      let value: unknown;
      try {
        value = this.decoder.next();
      } catch (err) {
        return this.fail(new ClientError(clientErrors.protocol, (err as Error).message));
      }
      if (value === INCOMPLETE) break;
      const p = this.pending[this.head];
      if (value instanceof PushMessage) {
        const kind = value.items[0];
        if (
          p?.confirmations === undefined ||
          typeof kind !== 'string' ||
          !CONFIRMATIONS.has(kind)
        ) {
          this.onPush(value);
          continue;
        }
        if (--p.confirmations > 0) continue;
      }
      if (p === undefined)
        return this.fail(new ClientError(clientErrors.protocol, 'a reply to no command'));
      this.pending[this.head++] = undefined as never; // let it be collected
      if (this.head > 1024 && this.head * 2 > this.pending.length) {
        this.pending.splice(0, this.head);
        this.head = 0;
      }
      if (p.settled) continue; // timed out earlier: its late reply is dropped
      p.settled = true;
      if (now === 0) now = monotonicMs();
      if (p.deadline <= now)
        p.reject(new ClientError(clientErrors.timeout, 'the server did not answer in time'));
      else if (value instanceof ServerError) p.reject(value);
      else p.resolve(value instanceof PushMessage ? value.items : value);
    }
  }

  /** Times out the commands past their deadline (the client's sweep calls this). */
  expire(now: number): void {
    for (let i = this.head; i < this.pending.length; i++) {
      const p = this.pending[i];
      if (!p.settled && p.deadline <= now) {
        p.settled = true;
        p.reject(new ClientError(clientErrors.timeout, 'the server did not answer in time'));
      }
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.socket.destroy();
  }

  close(): void {
    this.fail(new ClientError(clientErrors.closed, 'the client was closed'));
  }

  private closed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    const lost = new ClientError(
      this.failure instanceof ClientError && this.failure.code === clientErrors.closed
        ? clientErrors.closed
        : clientErrors.connectionLost,
      `connection lost before the reply came${this.failure ? ` (${this.failure.message})` : ''}`,
    );
    for (let i = this.head; i < this.pending.length; i++) {
      const p = this.pending[i];
      if (p.settled) continue;
      p.settled = true;
      p.reject(lost);
    }
    this.pending.length = 0;
    this.head = 0;
    this.onClose(this, this.failure);
  }
}
