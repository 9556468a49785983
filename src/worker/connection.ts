// One client connection: protocol detection, framing, command execution in order, back-pressure
// and closing. The codecs it drives are socket-free (src/protocol/).
import type { Socket } from 'node:net';
import type { ClientInfo, CommandContext, ServerInfo } from '../commands/context.ts';
import { checkArity, type CommandSpec, type Registry } from '../commands/registry.ts';
import { ReplyError, replyErrors, unknownRespCommand } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { detectProtocol, type Protocol } from '../protocol/detect.ts';
import { encodeLineReply, LineDecoder, splitLine, splitWords } from '../protocol/line.ts';
import type { Reply } from '../protocol/reply.ts';
import { encodeResp, RespDecoder, type RespLimits } from '../protocol/resp.ts';
import type { SharedStats } from '../stats/counters.ts';

/** What every connection of a worker shares. */
export interface ConnectionOwner {
  readonly registry: Registry;
  readonly stats: SharedStats;
  readonly logger: Logger;
  readonly server: ServerInfo;
  readonly workerId: number;
  readonly maxLineBytes: number;
  readonly respLimits: RespLimits;
  readonly outputHighWater: number;
  readonly shuttingDown: boolean;
  connectionClosed(conn: Connection): void;
  listClients(): Promise<ClientInfo[]>;
}

const NO_ARGS: Buffer[] = [];

export class Connection implements CommandContext {
  readonly socket: Socket;
  readonly peer: string;
  readonly clientId: number;
  respVersion: 2 | 3 = 2;
  clientName = '';
  libName = '';
  libVer = '';
  private readonly owner: ConnectionOwner;
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

  constructor(socket: Socket, peer: string, owner: ConnectionOwner) {
    this.socket = socket;
    this.peer = peer;
    this.owner = owner;
    this.clientId = owner.stats.nextClientId();
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
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
      laddr: socket.localAddress === undefined ? '' : `${socket.localAddress.replace(/^::ffff:(?=\d)/, '')}:${socket.localPort}`,
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

  private onData = (chunk: Buffer): void => {
    if (this.closing) return;
    if (this.decoder === null) {
      this.decoder =
        detectProtocol(chunk[0]) === 'resp'
          ? new RespDecoder(this.owner.respLimits)
          : new LineDecoder(this.owner.maxLineBytes);
    }
    this.decoder.push(chunk);
    this.process();
  };

  private onError = (err: NodeJS.ErrnoException): void => {
    // Resets and broken pipes are how clients leave; 'close' follows and does the bookkeeping.
    this.owner.logger.debug(`Client error: ${this.peer}: ${err.code ?? err.message}`);
  };

  private onClose = (): void => {
    this.closing = true;
    this.owner.connectionClosed(this);
  };

  /** Every reply written before the pause has reached the kernel: read again. */
  private onFlushed = (): void => {
    if (!this.paused) return;
    this.paused = false;
    if (this.closing) return;
    this.socket.resume();
    this.process();
  };

  private encode(reply: Reply): string | Buffer {
    return this.decoder instanceof RespDecoder ? encodeResp(reply, this.respVersion) : encodeLineReply(reply);
  }

  /** Runs every complete request received so far, unless a reply limit or async command stops it. */
  private process(): void {
    const decoder = this.decoder;
    if (this.closing || this.waiting || this.paused || decoder === null) return;
    const socket = this.socket;
    let commands = 0;
    socket.cork();
    try {
      for (;;) {
        const request = decoder.next();
        if (request === null) break;
        if (request instanceof ReplyError) {
          // A framing error leaves the stream unreadable: reply, then close once it is flushed.
          socket.write(this.encode(request));
          this.end();
          break;
        }
        commands++;
        const reply = Array.isArray(request) ? this.executeResp(request) : this.executeLine(request);
        if (reply instanceof Promise) {
          this.waiting = true;
          reply.then(this.afterAsync, this.afterAsyncFailure);
          break;
        }
        const out = this.encode(reply);
        if (socket.writableLength + out.length > this.owner.outputHighWater) {
          // Back-pressure: stop reading until the client has taken its replies. The callback
          // runs once this reply and all before it are handed to the kernel.
          socket.write(out, this.onFlushed);
          this.paused = true;
          socket.pause();
          if (this.closeRequested) this.end();
          break;
        }
        socket.write(out);
        if (this.closeRequested) {
          this.end();
          break;
        }
      }
    } finally {
      socket.uncork();
    }
    if (commands > 0) {
      this.lastCommandAt = Date.now();
      this.owner.stats.addCommands(this.owner.workerId, commands);
    }
    if (this.owner.shuttingDown && !this.closing && !this.busy) this.end();
  }

  private executeLine(line: Buffer): Reply | Promise<Reply> {
    const { name, rest } = splitLine(line);
    const spec = this.owner.registry.lookup(name);
    if (spec === undefined || spec.respOnly) return replyErrors.unknownCommand;
    let args: Buffer[];
    if (!spec.restOfLine) args = splitWords(rest);
    else if (rest === null || (rest.length === 0 && spec.minArgs === 0)) args = NO_ARGS;
    else args = [rest];
    return this.run(spec, args);
  }

  private executeResp(argv: Buffer[]): Reply | Promise<Reply> {
    const name = argv[0];
    const spec = this.owner.registry.lookup(name.toString('latin1'));
    const args = argv.length === 1 ? NO_ARGS : argv.slice(1);
    if (spec === undefined) return unknownRespCommand(name, args);
    return this.run(spec, args);
  }

  private run(spec: CommandSpec, args: Buffer[]): Reply | Promise<Reply> {
    this.lastCommand = spec.name;
    const arityError = checkArity(spec, args.length);
    if (arityError !== null) return arityError;
    try {
      return spec.run(this, args);
    } catch (err) {
      return this.internalError(spec.name, err);
    }
  }

  private internalError(name: string, err: unknown): ReplyError {
    const e = err instanceof Error ? err : new Error(String(err));
    const where = e.stack?.split('\n').find((l) => l.trimStart().startsWith('at '))?.trim() ?? '';
    this.owner.logger.error(`Command ${name} failed for ${this.peer}: ${e.name}: ${e.message} ${where}`.trimEnd());
    if (e.stack) this.owner.logger.debug(e.stack);
    return replyErrors.internal;
  }

  private afterAsync = (reply: Reply): void => {
    this.waiting = false;
    if (this.closing) return;
    this.socket.write(this.encode(reply));
    if (this.closeRequested) this.end();
    else this.process();
  };

  private afterAsyncFailure = (err: unknown): void => {
    this.afterAsync(this.internalError(this.lastCommand, err));
  };

  /** Closes once every queued reply is flushed; input that arrives meanwhile is ignored. */
  private end(): void {
    if (this.closing) return;
    this.closing = true;
    const socket = this.socket;
    if (this.paused) socket.resume(); // keep draining the kernel buffer so the close completes
    socket.end(() => socket.destroy());
  }
}
