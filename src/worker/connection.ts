// One client connection: framing, command execution in order, back-pressure and closing.
import type { Socket } from 'node:net';
import type { CommandContext } from '../commands/context.ts';
import { checkArity, type Registry } from '../commands/registry.ts';
import { ReplyError, replyErrors } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { encodeLineReply, LineDecoder, splitLine, splitWords } from '../protocol/line.ts';
import type { Reply } from '../protocol/reply.ts';
import type { SharedStats } from '../stats/counters.ts';

/** What every connection of a worker shares. */
export interface ConnectionOwner {
  readonly registry: Registry;
  readonly stats: SharedStats;
  readonly logger: Logger;
  readonly workerId: number;
  readonly maxLineBytes: number;
  readonly outputHighWater: number;
  readonly shuttingDown: boolean;
  connectionClosed(conn: Connection): void;
}

const NO_ARGS: Buffer[] = [];

export class Connection implements CommandContext {
  readonly socket: Socket;
  readonly peer: string;
  private readonly owner: ConnectionOwner;
  private readonly decoder: LineDecoder;
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
    this.decoder = new LineDecoder(owner.maxLineBytes);
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
  get workerId(): number {
    return this.owner.workerId;
  }

  closeAfterReply(): void {
    this.closeRequested = true;
  }

  /**
   * True while a request is partly received, running, or waiting for back-pressure to clear.
   * Unsent replies alone do not count: end() flushes them before closing.
   */
  get busy(): boolean {
    return this.waiting || this.paused || this.decoder.pending;
  }

  /** Shutdown began: an idle connection closes now, a busy one once it has caught up. */
  shutdown(): void {
    if (!this.busy) this.end();
  }

  private onData = (chunk: Buffer): void => {
    if (this.closing) return;
    this.decoder.push(chunk);
    this.process();
  };

  /** Every reply written before the pause has reached the kernel: read again. */
  private onFlushed = (): void => {
    if (!this.paused) return;
    this.paused = false;
    if (this.closing) return;
    this.socket.resume();
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

  /** Runs every complete request received so far, unless a reply limit or async command stops it. */
  private process(): void {
    if (this.closing || this.waiting || this.paused) return;
    const socket = this.socket;
    let commands = 0;
    socket.cork();
    try {
      for (;;) {
        const line = this.decoder.next();
        if (line === null) break;
        if (line instanceof ReplyError) {
          // The decoder's errors (line too long) leave the stream unframed: close after the reply.
          socket.write(encodeLineReply(line));
          this.end();
          break;
        }
        commands++;
        const reply = this.execute(line);
        if (reply instanceof Promise) {
          this.waiting = true;
          reply.then(this.afterAsync, this.afterAsyncFailure);
          break;
        }
        const out = encodeLineReply(reply);
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
    if (commands > 0) this.owner.stats.addCommands(this.owner.workerId, commands);
    if (this.owner.shuttingDown && !this.closing && !this.busy) this.end();
  }

  private execute(line: Buffer): Reply | Promise<Reply> {
    const { name, rest } = splitLine(line);
    const spec = this.owner.registry.lookup(name);
    if (spec === undefined) return replyErrors.unknownCommand;
    let args: Buffer[];
    if (!spec.restOfLine) args = splitWords(rest);
    else if (rest === null || (rest.length === 0 && spec.minArgs === 0)) args = NO_ARGS;
    else args = [rest];
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
    this.socket.write(encodeLineReply(reply));
    if (this.closeRequested) this.end();
    else this.process();
  };

  private afterAsyncFailure = (err: unknown): void => {
    this.afterAsync(this.internalError('(async)', err));
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
