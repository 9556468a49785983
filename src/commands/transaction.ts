// MULTI … EXEC. tcpool keeps no data, so a transaction is a queue: each command is checked as it
// arrives (AUTH, rate limit, arity, as any command) and answered +QUEUED, then EXEC runs the queue
// in order and replies with the array of their replies, an async command's reply awaited in its
// turn. A command refused while queueing makes EXEC answer -EXECABORT, as in Redis. The queue is
// held like one request: MAX_ARGS and MAX_REQUEST_BYTES bound it, checked before it grows.
import { execAborted, protocolError, type ReplyError, transactionErrors } from '../errors.ts';
import { Preencoded, Replies, type Reply } from '../protocol/reply.ts';
import type { CommandContext } from './context.ts';
import type { CommandSpec } from './registry.ts';

const QUEUED = new Preencoded('QUEUED');

/** Commands that run at once inside MULTI instead of being queued (Redis's list). */
const RUN_AT_ONCE = new Set(['MULTI', 'EXEC', 'DISCARD', 'WATCH', 'QUIT', 'RESET']);

export class Transaction {
  private readonly specs: CommandSpec[] = [];
  private readonly argvs: Buffer[][] = [];
  private args = 0;
  private bytes = 0;
  /** A command was refused while queueing: EXEC discards the transaction. */
  private dirty = false;
  private readonly maxArgs: number;
  private readonly maxBytes: number;

  constructor(maxArgs: number, maxBytes: number) {
    this.maxArgs = maxArgs;
    this.maxBytes = maxBytes;
  }

  get size(): number {
    return this.specs.length;
  }

  /** True when `spec` goes into the queue rather than running now. */
  queues(spec: CommandSpec): boolean {
    return !RUN_AT_ONCE.has(spec.name);
  }

  /** Queues a command that passed its checks; one over the limits ends the connection. */
  queue(ctx: CommandContext, spec: CommandSpec, args: Buffer[]): Reply {
    this.args += args.length + 1;
    this.bytes += spec.name.length;
    for (const a of args) this.bytes += a.length;
    if (this.args > this.maxArgs || this.bytes > this.maxBytes) {
      ctx.transaction = null;
      ctx.closeAfterReply();
      return protocolError(
        this.args > this.maxArgs
          ? 'transaction with more than MAX_ARGS arguments'
          : 'transaction larger than MAX_REQUEST_BYTES',
      );
    }
    // Copies: a view would keep the whole received chunk alive until EXEC.
    this.argvs.push(args.map((a) => Buffer.from(a)));
    this.specs.push(spec);
    return QUEUED;
  }

  /**
   * A command was refused before it could be queued or run (unknown, wrong arity, NOAUTH, rate
   * limit): EXEC will abort. EXEC refused itself aborts at once.
   */
  refuse(ctx: CommandContext, error: ReplyError, spec: CommandSpec | undefined): ReplyError {
    if (spec?.name === 'EXEC') {
      ctx.transaction = null;
      return execAborted(error);
    }
    this.dirty = true;
    return error;
  }

  /** EXEC (the caller has ended the transaction): every queued command's reply, in order. */
  run(ctx: CommandContext): Reply | Promise<Reply> {
    if (this.dirty) return transactionErrors.aborted;
    const replies: Reply[] = [];
    for (let i = 0; i < this.specs.length; i++) {
      const reply = runOne(ctx, this.specs[i], this.argvs[i]);
      if (reply instanceof Promise) return this.runRest(ctx, replies, reply, i);
      replies.push(reply);
    }
    return new Replies(replies);
  }

  /** From the first async command on: each command starts once the one before it is done. */
  private async runRest(
    ctx: CommandContext,
    replies: Reply[],
    pending: Promise<Reply>,
    i: number,
  ): Promise<Reply> {
    replies.push(await settle(ctx, this.specs[i], pending));
    for (let j = i + 1; j < this.specs.length; j++) {
      const reply = runOne(ctx, this.specs[j], this.argvs[j]);
      replies.push(reply instanceof Promise ? await settle(ctx, this.specs[j], reply) : reply);
    }
    return new Replies(replies);
  }
}

function runOne(ctx: CommandContext, spec: CommandSpec, args: Buffer[]): Reply | Promise<Reply> {
  try {
    return spec.run(ctx, args);
  } catch (err) {
    return ctx.internalError(spec.name, err);
  }
}

function settle(ctx: CommandContext, spec: CommandSpec, reply: Promise<Reply>): Promise<Reply> {
  return reply.catch((err: unknown) => ctx.internalError(spec.name, err));
}
