// One client connection: protocol detection, framing, command execution in order, back-pressure
// and closing. The codecs it drives are socket-free (src/protocol/).
import type { Socket } from 'node:net';
import type { ClientInfo, CommandContext, ServerInfo } from '../commands/context.ts';
import { checkArity, type CommandSpec, type Registry } from '../commands/registry.ts';
import type { Transaction } from '../commands/transaction.ts';
import { ReplyError, replyErrors, unknownRespCommand } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { detectProtocol, type Protocol } from '../protocol/detect.ts';
import { LINE, LineDecoder, NEED_MORE, splitWords, writeLineReply } from '../protocol/line.ts';
import type { Output } from '../protocol/output.ts';
import type { Reply } from '../protocol/reply.ts';
import { RespDecoder, type RespLimits, writeResp } from '../protocol/resp.ts';
import type { TokenVerifier } from '../auth/tokens.ts';
import type { LogThrottle } from '../log/throttle.ts';
import { startsWithProxyHeader } from '../protocol/proxy.ts';
import type { Counter, SharedStats } from '../stats/counters.ts';
import type { IpLimits, IpTable } from '../stats/ip-table.ts';
import { formatHostPort, plainIp } from '../net/address.ts';

/** What admission decided about a client (see WorkerServer.admit). */
export interface Admission {
  /** The client's real address (from the PROXY header when there was one). */
  ip: string;
  /** Its slot in the per-IP table, -1 when none. */
  slot: number;
  /** No AUTH configured, or the client's network is exempt. */
  authenticated: boolean;
  /** PROXY protocol is on but this peer is not a trusted proxy: a PROXY header from it is refused. */
  refuseProxyHeader: boolean;
}

export type AuthOutcome = 'ok' | 'invalid' | 'blocked' | 'not-configured';

/** What every connection of a worker shares. */
export interface ConnectionOwner {
  readonly tokens: TokenVerifier;
  readonly ipTable: IpTable | null;
  readonly ipLimits: IpLimits;
  /** RATE_LIMIT is on (and the per-IP table exists). */
  readonly rateLimited: boolean;
  /** Tokens a connection takes from its IP's bucket at once. */
  readonly tokenBatch: number;
  /** OUTPUT_BUFFER_LIMIT; 0 = none. */
  readonly outputLimit: number;
  readonly throttle: LogThrottle;
  count(counter: Counter): void;
  readonly registry: Registry;
  readonly stats: SharedStats;
  readonly logger: Logger;
  readonly server: ServerInfo;
  readonly workerId: number;
  readonly maxLineBytes: number;
  readonly respLimits: RespLimits;
  readonly outputHighWater: number;
  readonly shuttingDown: boolean;
  /** One per worker: processing a batch is synchronous, so all connections can share it. */
  readonly output: Output;
  connectionClosed(conn: Connection): void;
  listClients(): Promise<ClientInfo[]>;
}

const NO_ARGS: Buffer[] = [];
const SPACE = 0x20;

// The socket listeners are shared by every connection (no closures per client): each finds its
// connection through this property of the socket.
const kConnection = Symbol('connection');
type OwnedSocket = Socket & { [kConnection]: Connection };

function onData(this: OwnedSocket, chunk: Buffer): void {
  this[kConnection].onData(chunk);
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
  readonly peer: string;
  readonly ip: string;
  readonly ipSlot: number;
  readonly clientId: number;
  authenticated: boolean;
  private refuseProxyHeader: boolean;
  /** RATE_LIMIT tokens this connection has taken from its IP's bucket and not used yet. */
  private tokens = 0;
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
  private readonly createdAt = Date.now();
  private lastCommandAt = this.createdAt;
  private lastCommand = 'NULL';
  /** Chosen from the first byte received; null until then. */
  private decoder: LineDecoder | RespDecoder | null = null;
  /** Set by QUIT (through closeAfterReply) or a fatal request error: no more input is read. */
  private closing = false;
  private closeRequested = false;
  /** Stopped reading because too many reply bytes are unsent. */
  private paused = false;
  /** An asynchronous command is running; later requests wait for it, to keep replies in order. */
  private waiting = false;

  constructor(socket: Socket, peer: string, owner: ConnectionOwner, admission: Admission) {
    this.socket = socket;
    this.peer = peer;
    this.owner = owner;
    this.ip = admission.ip;
    this.ipSlot = admission.slot;
    this.authenticated = admission.authenticated;
    this.refuseProxyHeader = admission.refuseProxyHeader;
    this.clientId = owner.stats.nextClientId();
    (socket as OwnedSocket)[kConnection] = this;
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
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

  closeAfterReply(): void {
    this.closeRequested = true;
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

  /**
   * True while a request is partly received, running, or waiting for back-pressure to clear.
   * Unsent replies alone do not count: end() flushes them before closing.
   */
  get busy(): boolean {
    return this.waiting || this.paused || (this.decoder?.pending ?? false);
  }

  /** Shutdown began: an idle connection closes now, a busy one once it has caught up. */
  shutdown(): void {
    if (!this.busy) this.end();
  }

  onData(chunk: Buffer): void {
    if (this.closing) return;
    this.lastDataAt = Date.now();
    if (this.decoder === null) {
      if (this.refuseProxyHeader && startsWithProxyHeader(chunk)) {
        this.owner.count('proxy_rejections');
        this.owner.throttle.warn(
          'PROXY header rejected',
          `PROXY header rejected from untrusted ${this.peer} (not in TRUSTED_PROXIES)`,
        );
        this.socket.destroy();
        return;
      }
      this.decoder =
        detectProtocol(chunk[0]) === 'resp'
          ? new RespDecoder(this.owner.respLimits)
          : new LineDecoder(this.owner.maxLineBytes);
    }
    this.decoder.push(chunk);
    this.process();
  }

  onClose(): void {
    this.closing = true;
    this.owner.connectionClosed(this);
  }

  /** Every reply written before the pause has reached the kernel: read again. */
  private onFlushed(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.closing) return;
    this.socket.resume();
    this.process();
  }

  private write(reply: Reply, out: Output): void {
    if (this.decoder instanceof RespDecoder) writeResp(reply, this.respVersion, out);
    else writeLineReply(reply, out);
  }

  /**
   * Runs every complete request received so far, unless back-pressure or an async command stops
   * it. The replies of the batch leave in one write.
   */
  private process(): void {
    const decoder = this.decoder;
    if (this.closing || this.waiting || this.paused || decoder === null) return;
    const out = this.owner.output;
    const limit = this.owner.outputHighWater - this.socket.writableLength;
    let commands = 0;
    let stop = false;
    while (!stop) {
      let reply: Reply | Promise<Reply>;
      if (decoder instanceof LineDecoder) {
        const r = decoder.step();
        if (r === NEED_MORE) break;
        if (r !== LINE) {
          // A framing error leaves the stream unreadable: reply, then close once it is flushed.
          this.write(replyErrors.lineTooLong, out);
          this.closeRequested = true;
          break;
        }
        reply = this.executeLine(decoder.buf, decoder.start, decoder.end);
      } else {
        const request = decoder.next();
        if (request === null) break;
        if (request instanceof ReplyError) {
          this.write(request, out);
          this.closeRequested = true;
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
      stop = this.closeRequested;
      if (out.size > limit) {
        // Back-pressure: stop reading until the client has taken its replies.
        this.paused = true;
        this.socket.pause();
        stop = true;
      }
    }
    if (!out.empty) {
      // A batch that would take the unsent replies past OUTPUT_BUFFER_LIMIT is never queued.
      if (
        this.owner.outputLimit > 0 &&
        this.socket.writableLength + out.size > this.owner.outputLimit
      ) {
        out.take();
        return this.overLimit();
      }
      out.flushTo(this.socket, this.paused ? () => this.onFlushed() : undefined);
    }
    if (commands > 0) {
      this.lastCommandAt = this.lastDataAt;
      this.owner.stats.addCommands(this.owner.workerId, commands);
      this.partialSince = decoder.pending ? this.lastDataAt : 0;
    } else if (this.partialSince === 0 && decoder.pending) {
      this.partialSince = this.lastDataAt;
    }
    if (this.closeRequested || (this.owner.shuttingDown && !this.busy)) this.end();
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
    if (this.owner.rateLimited && this.tokens === 0) {
      // Tokens come from the IP's bucket shared by all workers, a few at a time when the limit
      // is high (one lock per batch), one at a time when it is low (exact).
      this.tokens = this.owner.ipTable!.takeTokens(
        this.ipSlot,
        this.owner.ipLimits,
        Date.now(),
        this.owner.tokenBatch,
      );
      if (this.tokens === 0) {
        this.owner.count('rate_limited');
        this.owner.throttle.warn(
          'Rate limit',
          `Rate limit exceeded: ${this.peer} (RATE_LIMIT ${this.owner.ipLimits.rate}/s per IP)`,
        );
        return this.refuse(replyErrors.rateLimited, spec);
      }
    }
    this.tokens--;
    const arityError = checkArity(spec, args.length);
    if (arityError !== null) return this.refuse(arityError, spec);
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

  private afterAsync(reply: Reply): void {
    this.waiting = false;
    if (this.closing) return;
    const out = this.owner.output;
    this.write(reply, out);
    if (
      this.owner.outputLimit > 0 &&
      this.socket.writableLength + out.size > this.owner.outputLimit
    ) {
      out.take();
      return this.overLimit();
    }
    out.flushTo(this.socket);
    if (this.closeRequested) this.end();
    else this.process();
  }

  /** Checks a token (AUTH, HELLO … AUTH); failures are counted per IP across workers. */
  async authenticate(token: Buffer, user: string | null): Promise<AuthOutcome> {
    const owner = this.owner;
    if (!owner.tokens.enabled) return 'not-configured';
    const table = owner.ipTable;
    if (table?.authBlocked(this.ipSlot, owner.ipLimits)) {
      owner.throttle.warn(
        'AUTH blocked',
        `AUTH refused for ${this.peer}: too many failed attempts`,
      );
      return 'blocked';
    }
    // One user, "default", as Redis without ACLs; the token is checked whatever the user, so
    // a wrong user name takes as long as a wrong token.
    const ok = (await owner.tokens.verify(token)) && (user === null || user === 'default');
    if (ok) {
      this.authenticated = true;
      return 'ok';
    }
    owner.count('auth_failures');
    const failures = table?.authFailed(this.ipSlot, owner.ipLimits) ?? 0;
    owner.throttle.warn(
      'AUTH failed',
      `AUTH failed for ${this.peer} (${failures} in the current window)`,
    );
    return 'invalid';
  }

  /** Which timeout, if any, this client has run past (the worker's sweep asks). */
  expired(now: number, idleMs: number, requestMs: number): 'idle' | 'request' | null {
    if (this.closing || this.waiting) return null;
    if (idleMs > 0 && now - this.lastDataAt > idleMs) return 'idle';
    if (
      requestMs > 0 &&
      this.partialSince > 0 &&
      !this.paused &&
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
      `Client ${this.peer} disconnected: its unsent replies would pass OUTPUT_BUFFER_LIMIT (${this.owner.outputLimit} bytes)`,
    );
    this.closing = true;
    this.socket.destroy();
  }

  /** Closes once every queued reply is flushed; input that arrives meanwhile is ignored. */
  private end(): void {
    if (this.closing) return;
    this.closing = true;
    const socket = this.socket;
    if (this.paused) socket.resume(); // keep draining the kernel buffer so the close completes
    socket.end(() => socket.destroy());
  }
}
