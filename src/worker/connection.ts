// One client connection: protocol detection, framing, command execution in order, back-pressure
// and how it ends. The codecs it drives are socket-free (src/protocol/).
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
import type { Socket } from 'node:net';
import type { AuthOutcome, ClientInfo, CommandContext, ServerInfo } from '../commands/context.ts';
import { checkArity, type CommandSpec, type Registry } from '../commands/registry.ts';
import type { Transaction } from '../commands/transaction.ts';
import { ReplyError, replyErrors, subscribeModeOnly, unknownRespCommand } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { LogThrottle } from '../log/throttle.ts';
import { formatHostPort, plainIp } from '../net/address.ts';
import { detectProtocol, type Protocol } from '../protocol/detect.ts';
import { LINE, LineDecoder, NEED_MORE, splitWords, writeLineReply } from '../protocol/line.ts';
import { startsWithProxyHeader } from '../protocol/proxy.ts';
import type { Reply } from '../protocol/reply.ts';
import { RespDecoder, type RespLimits, writeResp } from '../protocol/resp.ts';
import { SUBSCRIBE_MODE_COMMANDS } from '../pubsub/commands.ts';
import { currentHub } from '../pubsub/hub.ts';
import { Output } from '../protocol/output.ts';
import type { Counter, SharedStats } from '../stats/counters.ts';
import type { AccessControl } from './access.ts';
import type { Admitted } from './admission.ts';

/** What every connection of a worker shares. */
export interface ConnectionOwner {
  readonly registry: Registry;
  readonly stats: SharedStats;
  readonly logger: Logger;
  readonly throttle: LogThrottle;
  readonly server: ServerInfo;
  readonly workerId: number;
  readonly access: AccessControl;
  readonly limits: ConnectionLimits;
  /** Shutdown began. */
  readonly draining: boolean;
  /** One per worker: processing a batch is synchronous, so all connections can share it. */
  readonly output: Output;
  count(counter: Counter): void;
  /** The connection sent its first bytes (it is no longer a candidate for silent eviction). */
  spoke(conn: Connection): void;
  connectionClosed(conn: Connection): void;
  listClients(): Promise<ClientInfo[]>;
}

export interface ConnectionLimits {
  maxLineBytes: number;
  resp: RespLimits;
  /** OUTPUT_HIGH_WATER_BYTES: past it, reading stops until the client takes its replies. */
  outputHighWater: number;
  /** OUTPUT_BUFFER_LIMIT; 0 = none. */
  outputLimit: number;
}

/** How a connection was let in (see Admission.admit). */
export interface ConnectionOrigin {
  admitted: Admitted;
  /** No AUTH configured, or the client's network is exempt. */
  authenticated: boolean;
  /** PROXY protocol is on but this peer is not a trusted proxy: a PROXY header from it is refused. */
  refuseProxyHeader: boolean;
}

const NO_ARGS: Buffer[] = [];
const SPACE = 0x20;
const NEWLINE = Buffer.from('\n');

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

// The socket listeners are shared by every connection (no closures per client): each finds its
// connection through this property of the socket.
const kConnection = Symbol('connection');
type OwnedSocket = Socket & { [kConnection]: Connection };

function onData(this: OwnedSocket, chunk: Buffer): void {
  this[kConnection].onData(chunk);
}
function onEnd(this: OwnedSocket): void {
  this[kConnection].onEnd();
}
function onError(this: OwnedSocket, err: NodeJS.ErrnoException): void {
  // Resets and broken pipes are how clients leave; 'close' follows and does the bookkeeping.
  const conn = this[kConnection];
  conn.owner.logger.debug(`Client error: ${conn.peer}: ${err.code ?? err.message}`);
}
function onClose(this: OwnedSocket): void {
  this[kConnection].onClose();
}

export class Connection implements CommandContext {
  readonly socket: Socket;
  readonly admitted: Admitted;
  readonly clientId: number;
  authenticated: boolean;
  private refuseProxyHeader: boolean;
  /** RATE_LIMIT tokens this connection has taken from its IP's bucket and not used yet. */
  private rateTokens = 0;
  /** Date.now() of the last bytes received (IDLE_TIMEOUT_MS). */
  private lastDataAt = Date.now();
  /** Date.now() since when a request has been incomplete, 0 when none is (REQUEST_TIMEOUT_MS). */
  private partialSince = 0;
  respVersion: 2 | 3 = 2;
  clientName = '';
  libName = '';
  libVer = '';
  transaction: Transaction | null = null;
  readonly owner: ConnectionOwner;
  readonly createdAt = Date.now();
  private lastCommandAt = this.createdAt;
  private lastCommand = 'NULL';
  /** Chosen from the first byte received; null until then (the client has not spoken). */
  private decoder: LineDecoder | RespDecoder | null = null;
  /** QUIT or a framing error: close once the replies so far are sent. */
  private closeAfterFlush = false;
  /** No request will be read from new input: the client sent FIN, or shutdown stopped reading. */
  private inputDone = false;
  /** Date.now() when FIN was sent (closeGracefully): input is dropped until the client closes. */
  lingeringSince = 0;
  /** The socket is gone (closed or destroyed). */
  private closed = false;
  /** The last byte received: at EOF, whether the last line lacks its "\n". */
  private lastByte = 0;
  /** Stopped reading because too many reply bytes are unsent. */
  private paused = false;
  /** An asynchronous command is running; later requests wait for it, to keep replies in order. */
  private waiting = false;
  /** Pub/sub (src/pubsub/): channels and patterns subscribed to; RESP2 is then in subscribe mode. */
  subscriptions = 0;
  /** process() is building a batch in owner.output: pub/sub bytes for this client go there, in order. */
  private batching = false;
  private closeHooks: (() => void)[] | null = null;
  /** Pub/sub messages gathered this turn, written together (flushPushed). */
  private pushed: (string | Buffer)[] | null = null;
  private pushedBytes = 0;

  constructor(socket: Socket, owner: ConnectionOwner, origin: ConnectionOrigin) {
    this.socket = socket;
    this.owner = owner;
    this.admitted = origin.admitted;
    this.authenticated = origin.authenticated;
    this.refuseProxyHeader = origin.refuseProxyHeader;
    this.clientId = owner.stats.nextClientId();
    (socket as OwnedSocket)[kConnection] = this;
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
  }

  get peer(): string {
    return this.admitted.peer;
  }
  get registry(): Registry {
    return this.owner.registry;
  }
  get stats(): SharedStats {
    return this.owner.stats;
  }
  get server(): ServerInfo {
    return this.owner.server;
  }
  get workerId(): number {
    return this.owner.workerId;
  }
  get protocol(): Protocol {
    return this.decoder instanceof RespDecoder ? 'resp' : 'line';
  }
  /** Has sent at least one byte. */
  get spoken(): boolean {
    return this.decoder !== null;
  }

  closeAfterReply(): void {
    this.closeAfterFlush = true;
  }

  listClients(): Promise<ClientInfo[]> {
    return this.owner.listClients();
  }

  clientInfo(): ClientInfo {
    const now = Date.now();
    const socket = this.socket;
    return {
      id: this.clientId,
      addr: this.peer,
      laddr:
        socket.localAddress === undefined
          ? ''
          : formatHostPort(plainIp(socket.localAddress), socket.localPort),
      name: this.clientName,
      age: Math.floor((now - this.createdAt) / 1000),
      idle: Math.floor((now - this.lastCommandAt) / 1000),
      cmd: this.lastCommand.toLowerCase(),
      protocol: this.protocol,
      resp: this.respVersion,
      worker: this.owner.workerId,
      libName: this.libName,
      libVer: this.libVer,
      qbuf: socket.readableLength,
      omem: socket.writableLength,
    };
  }

  /** Shutdown began: the request being received is finished, what was read is answered, then it closes. */
  drain(): void {
    this.process();
    this.closeIfDone();
  }

  onData(chunk: Buffer): void {
    if (this.inputDone || this.lingeringSince > 0 || this.closed) return; // dropped
    if (this.owner.draining && !(this.decoder?.pending ?? false)) {
      // Shutdown, and no request is half received: read no more.
      this.inputDone = true;
      return this.closeIfDone();
    }
    this.lastDataAt = Date.now();
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
      this.decoder =
        detectProtocol(chunk[0]) === 'resp'
          ? new RespDecoder(this.owner.limits.resp)
          : new LineDecoder(this.owner.limits.maxLineBytes);
      this.owner.spoke(this);
    }
    this.lastByte = chunk[chunk.length - 1];
    this.decoder.push(chunk);
    this.process();
  }

  /** The client sent FIN: answer everything complete that it sent, then close. */
  onEnd(): void {
    if (this.inputDone || this.lingeringSince > 0 || this.closed) return;
    this.inputDone = true;
    // A last line without "\n" is a request too (the original server answered it).
    if (this.decoder instanceof LineDecoder && this.lastByte !== NEWLINE[0])
      this.decoder.push(NEWLINE);
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

  publish(channel: string | Buffer, message: string | Buffer): number {
    const bytes = (v: string | Buffer) => (typeof v === 'string' ? Buffer.from(v) : v);
    return currentHub().publish(bytes(channel), bytes(message));
  }

  send(reply: Reply): void {
    if (this.batching) return this.write(reply, this.owner.output);
    const out = new Output();
    this.write(reply, out);
    this.sendBatch(out);
  }

  /**
   * Pub/sub bytes for this client (already encoded for its protocol): into the batch being built
   * when it is this client's own command that published, else straight to the socket. A subscriber
   * whose unsent bytes pass `limit` is cut off (PUBSUB_OUTPUT_LIMIT_BYTES), so a subscriber that
   * does not read slows nobody down.
   */
  deliver(data: string | Buffer, limit: number): boolean {
    if (this.closed || this.lingeringSince > 0) return false;
    if (this.batching) {
      if (typeof data === 'string') this.owner.output.text(data);
      else this.owner.output.bytes(data);
      return true;
    }
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (limit > 0 && this.socket.writableLength + this.pushedBytes + size > limit) {
      this.owner.count('pubsub_output_disconnects');
      this.owner.throttle.warn(
        'Pub/sub output limit',
        `Subscriber ${this.peer} disconnected: its unsent messages would pass PUBSUB_OUTPUT_LIMIT_BYTES (${limit} bytes)`,
      );
      this.pushed = null;
      this.destroy();
      return false;
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
    if (pushed.length === 1) this.socket.write(pushed[0]);
    else
      this.socket.write(
        Buffer.concat(pushed.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))),
      );
  }

  /** Every reply written before the pause has reached the kernel: read again. */
  private onFlushed(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.closed || this.lingeringSince > 0) return;
    this.socket.resume();
    this.process();
    this.closeIfDone();
  }

  private write(reply: Reply, out: Output): void {
    if (this.decoder instanceof RespDecoder) writeResp(reply, this.respVersion, out);
    else writeLineReply(reply, out);
  }

  /**
   * Hands a batch of replies to the socket. The one place output limits are checked, for every
   * path (synchronous batches and asynchronous replies alike): past OUTPUT_BUFFER_LIMIT the client
   * is cut off; past OUTPUT_HIGH_WATER_BYTES reading stops until the batch reaches the kernel, so
   * unsent replies stay within the high-water mark plus one reply. False when cut off.
   */
  private sendBatch(out: Output): boolean {
    if (out.empty) return true;
    const { outputLimit, outputHighWater } = this.owner.limits;
    const unsent = this.socket.writableLength + out.size;
    if (outputLimit > 0 && unsent > outputLimit) {
      out.take();
      this.overLimit();
      return false;
    }
    if (unsent > outputHighWater && !this.paused) {
      this.paused = true;
      this.socket.pause();
      out.flushTo(this.socket, () => this.onFlushed());
    } else {
      out.flushTo(this.socket);
    }
    return true;
  }

  /**
   * Runs every complete request received so far, unless back-pressure or an async command stops
   * it. The replies of the batch leave in one write.
   */
  private process(): void {
    const decoder = this.decoder;
    if (this.closed || this.lingeringSince > 0 || this.waiting || this.paused || decoder === null)
      return;
    this.flushPushed(); // messages received before these requests go out before their replies
    const out = this.owner.output;
    const room = this.owner.limits.outputHighWater - this.socket.writableLength;
    let commands = 0;
    this.batching = true;
    while (!this.closeAfterFlush && out.size <= room) {
      let reply: Reply | Promise<Reply>;
      if (decoder instanceof LineDecoder) {
        const r = decoder.step();
        if (r === NEED_MORE) break;
        if (r !== LINE) {
          // A framing error leaves the stream unreadable: reply, then close once it is flushed.
          this.write(replyErrors.lineTooLong, out);
          this.closeAfterFlush = true;
          break;
        }
        reply = this.executeLine(decoder.buf, decoder.start, decoder.end);
      } else {
        const request = decoder.next();
        if (request === null) break;
        if (request instanceof ReplyError) {
          this.write(request, out);
          this.closeAfterFlush = true;
          break;
        }
        reply = this.executeResp(request);
      }
      commands++;
      if (reply instanceof Promise) {
        this.waiting = true;
        reply.then(
          (r) => this.afterAsync(r),
          (err: unknown) => this.afterAsync(this.internalError(this.lastCommand, err)),
        );
        break;
      }
      this.write(reply, out);
    }
    this.batching = false;
    if (!this.sendBatch(out)) return;
    if (commands > 0) {
      this.lastCommandAt = this.lastDataAt;
      this.owner.stats.addCommands(this.owner.workerId, commands);
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
    this.waiting = false;
    if (this.closed) return;
    this.flushPushed();
    const out = this.owner.output;
    this.write(reply, out);
    if (!this.sendBatch(out)) return;
    this.process();
    this.closeIfDone();
  }

  /** Closes once nothing more is owed: QUIT, or no more input and every request read answered. */
  private closeIfDone(): void {
    if (this.closed || this.lingeringSince > 0 || this.waiting) return;
    if (this.closeAfterFlush || (this.inputDone && !this.paused)) this.closeGracefully();
  }

  private executeLine(line: Buffer, start: number, end: number): Reply | Promise<Reply> {
    let sp = start;
    while (sp < end && line[sp] !== SPACE) sp++;
    const spec = this.owner.registry.lookupBytes(line, start, sp);
    if (spec === undefined || spec.respOnly) return replyErrors.unknownCommand;
    let args = NO_ARGS;
    if (sp < end) {
      // Everything after the first space, byte for byte (possibly empty: "ECHO " echoes "").
      const rest = line.subarray(sp + 1, end);
      if (!spec.restOfLine) args = splitWords(rest);
      else if (rest.length > 0 || spec.minArgs > 0) args = [rest];
    }
    return this.run(spec, args);
  }

  private executeResp(argv: Buffer[]): Reply | Promise<Reply> {
    const name = argv[0];
    const spec = this.owner.registry.lookupBytes(name, 0, name.length);
    const args = argv.length === 1 ? NO_ARGS : argv.slice(1);
    if (spec === undefined) return this.refuse(unknownRespCommand(name, args), spec);
    return this.run(spec, args);
  }

  private run(spec: CommandSpec, args: Buffer[]): Reply | Promise<Reply> {
    this.lastCommand = spec.name;
    if (!this.authenticated && !spec.noAuth) return this.refuse(replyErrors.authRequired, spec);
    const access = this.owner.access;
    if (access.rateLimited && spec.cost > 0) {
      // A command may cost more than one token (its definition's `cost`).
      while (this.rateTokens < spec.cost) {
        const n = access.takeRateTokens(this.admitted.ipEntry, this.peer);
        if (n === 0) break;
        this.rateTokens += n;
      }
      if (this.rateTokens < spec.cost) return this.refuse(replyErrors.rateLimited, spec);
      this.rateTokens -= spec.cost;
    }
    const arityError = checkArity(spec, args.length);
    if (arityError !== null) return this.refuse(arityError, spec);
    // RESP2 subscribe mode, as Redis: only (un)subscribing, PING, QUIT and RESET.
    if (this.subscriptions > 0 && this.respVersion === 2 && this.decoder instanceof RespDecoder)
      if (!SUBSCRIBE_MODE_COMMANDS.has(spec.name)) return subscribeModeOnly(spec.name);
    if (this.transaction?.queues(spec)) return this.transaction.queue(this, spec, args);
    try {
      return spec.run(this, args);
    } catch (err) {
      return this.internalError(spec.name, err);
    }
  }

  /** A request refused before it ran; inside MULTI it also dooms the transaction. */
  private refuse(error: ReplyError, spec: CommandSpec | undefined): ReplyError {
    return this.transaction === null ? error : this.transaction.refuse(this, error, spec);
  }

  internalError(name: string, err: unknown): ReplyError {
    const e = err instanceof Error ? err : new Error(String(err));
    const where =
      e.stack
        ?.split('\n')
        .find((l) => l.trimStart().startsWith('at '))
        ?.trim() ?? '';
    this.owner.logger.error(
      `Command ${name} failed for ${this.peer}: ${e.name}: ${e.message} ${where}`.trimEnd(),
    );
    if (e.stack) this.owner.logger.debug(e.stack);
    return replyErrors.internal;
  }

  /** Checks a token (AUTH, HELLO … AUTH); failures are counted per IP across workers. */
  async authenticate(token: Buffer, user: string | null): Promise<AuthOutcome> {
    const outcome = await this.owner.access.authenticate(
      this.admitted.ipEntry,
      this.peer,
      token,
      user,
    );
    if (outcome === 'ok') this.authenticated = true;
    return outcome;
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
    if (this.waiting) return null;
    if (idleMs > 0 && now - this.lastDataAt > idleMs) return 'idle';
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

  /** Unsent replies passed OUTPUT_BUFFER_LIMIT: the client is cut off (Redis's client-output-buffer-limit). */
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
    this.lingeringSince = Date.now();
    this.socket.end();
    this.socket.resume();
  }

  /** Closes at once, unsent replies lost (limits, timeouts). */
  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }
}
