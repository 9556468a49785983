// One client stream (TCP, TLS, WebSocket): framing, command execution in order, back-pressure and
// how it ends. It drives a Protocol (src/protocol/protocol.ts) over a Channel and knows neither
// which codec nor which transport it holds; requests go through the one executor (executor.ts).
//
// How a connection ends, in one place (see closeGracefully):
//   - the client sends FIN: every complete request received is answered, in order, async ones
//     too (a last line without "\n" is a request), then the server closes;
//   - QUIT or a framing error: the reply is sent, then the server closes;
//   - shutdown: the request being received is finished, nothing more is read, what was read is
//     answered, then the server closes;
// and "closes" means lingering: FIN is sent after the replies, and input is read and dropped
// until the client closes too (or a deadline passes). Closing a socket with unread input sends
// a reset, and a reset can destroy replies written but not yet delivered (nginx's lingering close).
import { performance } from 'node:perf_hooks';
import type { ClientInfo } from '../commands/context.ts';
import { ReplyError } from '../errors.ts';
import { formatHostPort, plainIp } from '../net/address.ts';
import { detectProtocol } from '../protocol/index.ts';
import { Output } from '../protocol/output.ts';
import { FAILED, NEED_MORE, type Protocol, type RequestDecoder } from '../protocol/protocol.ts';
import { startsWithProxyHeader } from '../protocol/proxy.ts';
import type { Reply } from '../protocol/reply.ts';
import { executeDecoded } from './executor.ts';
import { Session, type SessionOrigin, type SessionOwner } from './session.ts';
import { tickMs } from '../stats/clock.ts';

export type { ConnectionLimits } from './session.ts';

// Connection's flags.
const F_REFUSE_PROXY_HEADER = 1;
const F_MESSAGES = 2;
const F_SHARED_READ_BUFFER = 4;
const F_CLOSE_AFTER_FLUSH = 8;
const F_INPUT_DONE = 16;
const F_CLOSED = 32;
const F_PAUSED = 64;
const F_BATCHING = 128;

/** Connections with pub/sub messages gathered, written once the current turn's work is done. */
let toFlush: Connection[] = [];
function flushSoon(conn: Connection): void {
  if (toFlush.length === 0)
    queueMicrotask(() => {
      const conns = toFlush;
      toFlush = [];
      for (const c of conns) c.flushPushed();
    });
  toFlush.push(conn);
}

/** How replies leave and input is throttled: a net.Socket is one; a WebSocket wraps into one. */
export interface Channel {
  write(data: string | Buffer, onWritten?: () => void): unknown;
  cork(): void;
  uncork(): void;
  /** Bytes written and not yet handed to the kernel. */
  readonly writableLength: number;
  /** Bytes received and not yet read (CLIENT LIST's qbuf). */
  readonly readableLength: number;
  pause(): unknown;
  resume(): unknown;
  /** Ends after what was written: FIN on a socket, a close frame on a WebSocket. */
  end(): unknown;
  /** At once, unsent replies lost. */
  destroy(): unknown;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
}

/** What every connection of a worker shares. */
export interface ConnectionOwner extends SessionOwner {
  /** The connection sent its first bytes (it is no longer a candidate for silent eviction). */
  spoke(conn: Connection): void;
  connectionClosed(conn: Connection): void;
}

export interface ConnectionOrigin extends SessionOrigin {
  /**
   * PROXY protocol is on but this peer is not a trusted proxy: a PROXY header from it is refused.
   */
  refuseProxyHeader: boolean;
  /**
   * The protocol when the transport decides it (a WebSocket subprotocol), with the RESP version
   * it starts with; otherwise the first byte decides.
   */
  protocol?: { codec: Protocol; respVersion: 2 | 3 };
  /** Each write is one message (WebSocket): every reply is sent on its own, never batched. */
  messages?: boolean;
  /**
   * The chunks given to onData lie in a read buffer the transport reuses once onData returns
   * (Node's handle and onread paths, Bun): the decoder copies what it keeps, and the arguments it hands out.
   */
  sharedReadBuffer?: boolean;
  /**
   * The transport already logged this client's arrival ("Client connected"): a session that takes
   * over a connection (a WebSocket upgraded from HTTP) is not announced twice.
   */
  announced?: boolean;
}

export class Connection extends Session {
  readonly channel: Channel;
  declare readonly owner: ConnectionOwner;
  codec: Protocol | null = null;
  /** tickMs() of the last bytes received (IDLE_TIMEOUT_MS). */
  private lastDataAt = this.createdAt;
  /** tickMs() since when a request has been incomplete, 0 when none is (REQUEST_TIMEOUT_MS). */
  private partialSince = 0;
  /** Chosen with the codec; null until the client has spoken. */
  private decoder: RequestDecoder | null = null;
  /** tickMs() when FIN was sent (closeGracefully): input is dropped until the client closes. */
  lingeringSince = 0;
  /**
   * The asynchronous command running (its metrics index, and performance.now() when it started),
   * or null; later requests wait for it, to keep replies in order. One field, set only then: a
   * fractional time kept on every connection would take a 16-byte number box each.
   */
  private waiting: { readonly cmd: number; readonly start: number } | null = null;
  /**
   * The yes/no state below, one bit each (the F_ constants): one field where eight took 64 bytes
   * on every connection (docs/PERFORMANCE.md, section 9). The accessors are inlined.
   */
  private flags = 0;
  private setFlag(bit: number, on: boolean): void {
    this.flags = on ? this.flags | bit : this.flags & ~bit;
  }
  /** The client may not send a PROXY header (it is refused if it does). */
  private get refuseProxyHeader(): boolean {
    return (this.flags & F_REFUSE_PROXY_HEADER) !== 0;
  }
  /** Each reply is its own message (WebSocket frames), not bytes batched with others. */
  private get messages(): boolean {
    return (this.flags & F_MESSAGES) !== 0;
  }
  /** Reads arrive in a buffer reused after each (the handle path): the decoder copies. */
  private get sharedReadBuffer(): boolean {
    return (this.flags & F_SHARED_READ_BUFFER) !== 0;
  }
  /** QUIT or a framing error: close once the replies so far are sent. */
  private get closeAfterFlush(): boolean {
    return (this.flags & F_CLOSE_AFTER_FLUSH) !== 0;
  }
  private set closeAfterFlush(on: boolean) {
    this.setFlag(F_CLOSE_AFTER_FLUSH, on);
  }
  /** No request will be read from new input: the client sent FIN, or shutdown stopped reading. */
  private get inputDone(): boolean {
    return (this.flags & F_INPUT_DONE) !== 0;
  }
  private set inputDone(on: boolean) {
    this.setFlag(F_INPUT_DONE, on);
  }
  /** The channel is gone (closed or destroyed). */
  private get closed(): boolean {
    return (this.flags & F_CLOSED) !== 0;
  }
  private set closed(on: boolean) {
    this.setFlag(F_CLOSED, on);
  }
  /** Stopped reading because too many reply bytes are unsent. */
  private get paused(): boolean {
    return (this.flags & F_PAUSED) !== 0;
  }
  private set paused(on: boolean) {
    this.setFlag(F_PAUSED, on);
  }
  /**
   * process() is building a batch in owner.output: pub/sub bytes for this client go there, in
   * order.
   */
  private get batching(): boolean {
    return (this.flags & F_BATCHING) !== 0;
  }
  private set batching(on: boolean) {
    this.setFlag(F_BATCHING, on);
  }
  private closeHooks: (() => void)[] | null = null;
  /** Pub/sub messages gathered this turn, written together (flushPushed). */
  private pushed: (string | Buffer)[] | null = null;
  private pushedBytes = 0;

  constructor(channel: Channel, owner: ConnectionOwner, origin: ConnectionOrigin) {
    super(owner, origin);
    this.channel = channel;
    this.flags =
      (origin.refuseProxyHeader ? F_REFUSE_PROXY_HEADER : 0) |
      (origin.messages === true ? F_MESSAGES : 0) |
      (origin.sharedReadBuffer === true ? F_SHARED_READ_BUFFER : 0);
    if (origin.protocol !== undefined) {
      this.codec = origin.protocol.codec;
      this.respVersion = origin.protocol.respVersion;
      this.decoder = this.codec.decoder(owner.limits.requests);
      this.decoder.copyArgs = this.sharedReadBuffer;
    }
  }

  /** A stream takes pub/sub messages (a getter: no field on every connection). */
  get pushes(): boolean {
    return true;
  }

  /** Has sent at least one byte. */
  get spoken(): boolean {
    return this.decoder !== null;
  }

  closeAfterReply(): void {
    this.closeAfterFlush = true;
  }

  clientInfo(): ClientInfo {
    const now = tickMs();
    const channel = this.channel;
    return {
      id: this.clientId,
      addr: this.peer,
      laddr:
        channel.localAddress === undefined
          ? ''
          : formatHostPort(plainIp(channel.localAddress), channel.localPort),
      name: this.clientName,
      age: Math.floor((now - this.createdAt) / 1000),
      idle: Math.floor((now - this.lastCommandAt) / 1000),
      cmd: this.lastCommand.toLowerCase(),
      protocol: this.protocol,
      transport: this.transport,
      resp: this.respVersion,
      worker: this.owner.workerId,
      libName: this.libName,
      libVer: this.libVer,
      qbuf: channel.readableLength,
      omem: channel.writableLength,
    };
  }

  /**
   * Shutdown began: the request being received is finished, what was read is answered, then it
   * closes.
   */
  drain(): void {
    this.process();
    this.closeIfDone();
  }

  /** Bytes arrived (a stream's chunk). */
  onData(chunk: Buffer): void {
    if (this.inputDone || this.lingeringSince > 0 || this.closed) return; // dropped
    if (this.owner.draining && !(this.decoder?.pending ?? false)) {
      // Shutdown, and no request is half received: read no more.
      this.inputDone = true;
      return this.closeIfDone();
    }
    this.lastDataAt = tickMs();
    if (this.decoder === null) {
      if (this.refuseProxyHeader && startsWithProxyHeader(chunk)) {
        this.owner.count('proxy_rejections');
        this.owner.throttle.warn(
          'PROXY header rejected',
          `PROXY header rejected from untrusted ${this.peer} (not in TRUSTED_PROXIES)`,
        );
        this.destroy();
        return;
      }
      this.codec = detectProtocol(chunk[0]);
      this.decoder = this.codec.decoder(this.owner.limits.requests);
      this.decoder.copyArgs = this.sharedReadBuffer;
      this.owner.spoke(this);
    }
    this.owner.metrics.received(chunk.length);
    this.decoder.push(chunk);
    this.process();
    // What was not consumed now (a partial request, requests waiting behind an async command or
    // back-pressure) must outlive the read buffer. (Asked first: `.buffer` is a slow getter.)
    if (this.sharedReadBuffer && this.decoder.pending) this.decoder.retain(chunk.buffer);
  }

  /** A whole message arrived (a WebSocket frame): it holds complete requests. */
  onMessage(data: Buffer): void {
    if (this.inputDone || this.lingeringSince > 0 || this.closed || this.decoder === null) return;
    this.owner.metrics.received(data.length);
    this.decoder.push(data);
    this.decoder.boundary();
    this.lastDataAt = tickMs();
    this.process();
  }

  /** The client sent FIN: answer everything complete that it sent, then close. */
  onEnd(): void {
    if (this.inputDone || this.lingeringSince > 0 || this.closed) return;
    this.inputDone = true;
    // A last line without "\n" is a request too (the original server answered it).
    this.decoder?.boundary();
    this.process();
    this.closeIfDone();
  }

  onClose(): void {
    this.closed = true;
    this.owner.connectionClosed(this);
    const hooks = this.closeHooks;
    this.closeHooks = null;
    if (hooks !== null) for (const fn of hooks) fn();
  }

  whenClosed(fn: () => void): void {
    if (this.closed) return fn();
    this.closeHooks ??= [];
    this.closeHooks.push(fn);
  }

  send(reply: Reply): void {
    if (this.codec === null) return;
    // Inside a batch on a stream: in the batch, in order. On a message channel every reply is a
    // message of its own, and outside a batch (an async command) it leaves at once.
    if (this.batching && !this.messages) return this.codec.write(reply, this, this.owner.output);
    const out = new Output();
    this.codec.write(reply, this, out);
    this.sendBatch(out);
  }

  /**
   * Pub/sub bytes for this client (already encoded for its protocol): into the batch being built
   * when it is this client's own command that published, else written at the end of this turn. A
   * subscriber whose unsent bytes pass `limit` is cut off (PUBSUB_OUTPUT_LIMIT_BYTES), so a
   * subscriber that does not read slows nobody down.
   */
  deliver(data: string | Buffer, limit: number): boolean {
    if (this.closed || this.lingeringSince > 0) return false;
    if (this.batching && !this.messages) {
      if (typeof data === 'string') this.owner.output.text(data);
      else this.owner.output.bytes(data);
      return true;
    }
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (limit > 0 && this.channel.writableLength + this.pushedBytes + size > limit) {
      this.owner.count('pubsub_output_disconnects');
      this.owner.throttle.warn(
        'Pub/sub output limit',
        `Subscriber ${this.peer} disconnected: its unsent messages would pass PUBSUB_OUTPUT_LIMIT_BYTES (${limit} bytes)`,
      );
      this.pushed = null;
      this.destroy();
      return false;
    }
    // Its own command published, on a message channel: the message goes before the reply.
    if (this.batching) {
      this.channel.write(data);
      return true;
    }
    // Messages gathered in one turn of the event loop leave in one write (fan-out to thousands).
    if (this.pushed === null) {
      this.pushed = [];
      flushSoon(this);
    }
    this.pushed.push(data);
    this.pushedBytes += size;
    return true;
  }

  /** Writes the gathered pub/sub messages (before any later reply of this connection). */
  flushPushed(): void {
    const pushed = this.pushed;
    if (pushed === null) return;
    this.pushed = null;
    this.pushedBytes = 0;
    if (this.closed || this.lingeringSince > 0) return;
    const channel = this.channel;
    if (pushed.length === 1 || this.messages) for (const p of pushed) channel.write(p);
    else
      channel.write(Buffer.concat(pushed.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))));
  }

  /** Every reply written before the pause has reached the kernel: read again. */
  private onFlushed(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.closed || this.lingeringSince > 0) return;
    this.channel.resume();
    this.process();
    this.closeIfDone();
  }

  /**
   * Hands replies to the channel. The one place output limits are checked, for every path
   * (synchronous batches and asynchronous replies alike): past OUTPUT_BUFFER_LIMIT the client is
   * cut off; past OUTPUT_HIGH_WATER_BYTES reading stops until the batch reaches the kernel, so
   * unsent replies stay within the high-water mark plus one reply. False when cut off.
   */
  private sendBatch(out: Output): boolean {
    if (out.empty) return true;
    const { outputLimit, outputHighWater } = this.owner.limits;
    const channel = this.channel;
    const unsent = channel.writableLength + out.size;
    if (outputLimit > 0 && unsent > outputLimit) {
      out.take();
      this.overLimit();
      return false;
    }
    this.owner.metrics.sent(out.size);
    let onWritten: (() => void) | undefined;
    if (unsent > outputHighWater && !this.paused) {
      this.paused = true;
      channel.pause();
      onWritten = () => this.onFlushed();
    }
    if (this.messages) channel.write(out.take(), onWritten);
    else out.flushTo(channel, onWritten);
    return true;
  }

  /**
   * Runs every complete request received so far, unless back-pressure or an async command stops
   * it. The replies of the batch leave in one write (one message each on a message channel).
   */
  private process(): void {
    const decoder = this.decoder;
    const codec = this.codec;
    if (
      this.closed ||
      this.lingeringSince > 0 ||
      this.waiting !== null ||
      this.paused ||
      decoder === null ||
      codec === null
    )
      return;
    this.flushPushed(); // messages received before these requests go out before their replies
    const out = this.owner.output;
    const room = this.owner.limits.outputHighWater - this.channel.writableLength;
    const metrics = this.owner.metrics;
    const protocol = codec.name === 'line' ? 0 : 1;
    let commands = 0;
    metrics.startBatch();
    this.batching = true;
    while (!this.closeAfterFlush && !this.paused && out.size <= room) {
      const r = decoder.request();
      if (r === NEED_MORE) break;
      if (r === FAILED) {
        // A framing error leaves the stream unreadable: reply, then close once it is flushed.
        metrics.error(decoder.failure.code);
        codec.write(decoder.failure, this, out);
        this.closeAfterFlush = true;
        break;
      }
      const reply = executeDecoded(this, decoder);
      commands++;
      if (reply instanceof Promise) {
        this.waiting = { cmd: this.cmd, start: performance.now() };
        reply.then(
          (r) => this.afterAsync(r),
          (err: unknown) => this.afterAsync(this.internalError(this.lastCommand, err)),
        );
        break;
      }
      metrics.command(this.cmd, protocol);
      if (reply instanceof ReplyError) metrics.error(reply.code);
      codec.write(reply, this, out);
      if (this.messages && !this.sendBatch(out)) {
        this.batching = false;
        return;
      }
    }
    metrics.endBatch();
    this.batching = false;
    // Counted before the replies leave: a client that has its reply and asks STATS on another
    // worker must see its command counted.
    if (commands > 0) this.owner.stats.addCommands(this.owner.workerId, commands);
    if (!this.sendBatch(out)) return;
    if (commands > 0) {
      this.lastCommandAt = this.lastDataAt;
      this.partialSince = decoder.pending ? this.lastDataAt : 0;
      // Shutdown: once the request that was being received is answered, read no more.
      if (this.owner.draining) this.inputDone = true;
    } else if (this.partialSince === 0 && decoder.pending) {
      this.partialSince = this.lastDataAt;
    }
    if (this.owner.draining && !decoder.pending) this.inputDone = true;
    this.closeIfDone();
  }

  private afterAsync(reply: Reply): void {
    const { cmd, start } = this.waiting!;
    this.waiting = null;
    const metrics = this.owner.metrics;
    metrics.asyncCommand(cmd, this.codec!.name === 'line' ? 0 : 1, start);
    if (reply instanceof ReplyError) metrics.error(reply.code);
    if (this.closed) return;
    this.flushPushed();
    const out = this.owner.output;
    this.codec!.write(reply, this, out);
    if (!this.sendBatch(out)) return;
    this.process();
    this.closeIfDone();
  }

  /** Closes once nothing more is owed: QUIT, or no more input and every request read answered. */
  private closeIfDone(): void {
    if (this.closed || this.lingeringSince > 0 || this.waiting !== null) return;
    if (this.closeAfterFlush || (this.inputDone && !this.paused)) this.closeGracefully();
  }

  /** Which timeout, if any, this client has run past (the worker's sweep asks). */
  expired(
    now: number,
    idleMs: number,
    requestMs: number,
    lingerMs: number,
  ): 'idle' | 'request' | 'linger' | null {
    if (this.closed) return null;
    if (this.lingeringSince > 0) return now - this.lingeringSince > lingerMs ? 'linger' : null;
    if (this.waiting !== null) return null;
    // A subscriber only listens: as Redis, IDLE_TIMEOUT_MS does not apply to it.
    if (idleMs > 0 && now - this.lastDataAt > idleMs && this.subscriptions === 0) return 'idle';
    if (
      requestMs > 0 &&
      this.partialSince > 0 &&
      !this.paused &&
      !this.inputDone &&
      now - this.partialSince > requestMs
    )
      return 'request';
    return null;
  }

  /**
   * Unsent replies passed OUTPUT_BUFFER_LIMIT: the client is cut off (Redis's
   * client-output-buffer-limit).
   */
  private overLimit(): void {
    this.owner.count('output_limit_disconnects');
    this.owner.throttle.warn(
      'Output buffer limit',
      `Client ${this.peer} disconnected: its unsent replies would pass OUTPUT_BUFFER_LIMIT (${this.owner.limits.outputLimit} bytes)`,
    );
    this.destroy();
  }

  /** Sends FIN after the queued replies, then reads and drops input until the client closes. */
  closeGracefully(): void {
    if (this.closed || this.lingeringSince > 0) return;
    this.lingeringSince = tickMs();
    this.channel.end();
    this.channel.resume();
  }

  /** Closes at once, unsent replies lost (limits, timeouts). */
  destroy(): void {
    this.closed = true;
    this.channel.destroy();
  }
}
