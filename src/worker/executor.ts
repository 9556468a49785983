// The one executor: every request, whatever transport and protocol carried it, is run here
// through the same checks in the same order: the protocol offers the command, AUTH, the rate
// limit, arity, MULTI's queue, then the handler (whose throw becomes "Internal error").
import type { CommandSpec } from '../commands/registry.ts';
import { checkArity } from '../commands/registry.ts';
import { type ReplyError, replyErrors, subscribeModeOnly } from '../errors.ts';
import type { RequestDecoder } from '../protocol/protocol.ts';
import type { Reply } from '../protocol/reply.ts';
import { SUBSCRIBE_MODE_COMMANDS } from '../pubsub/commands.ts';
import { endCommandSpan, sampled, spanStart, untraced } from '../tracing/tracing.ts';
import type { Session } from './session.ts';

/** Runs the request the decoder just yielded (request() returned REQUEST). */
export function executeDecoded(session: Session, decoder: RequestDecoder): Reply | Promise<Reply> {
  const spec = session.owner.registry.lookupBytes(
    decoder.nameBuf,
    decoder.nameStart,
    decoder.nameEnd,
  );
  if (spec === undefined || (spec.family !== 'core' && !session.offers(spec))) {
    session.cmd = 0;
    // A stream session only: an HTTP API request is HTTP already, and cannot smuggle one.
    if (spec === undefined && session.pushes && isHttpRequestLine(decoder))
      return crossProtocol(session, decoder);
    return refuse(session, decoder.unknown(), undefined);
  }
  session.cmd = session.owner.metrics.indexOf(spec);
  return execute(session, spec, decoder.args(spec));
}

const POST = Buffer.from('post');
const HOST = Buffer.from('host:');

/** The request's name is POST or Host: (any case), as Redis checks. */
function isHttpRequestLine(decoder: RequestDecoder): boolean {
  const length = decoder.nameEnd - decoder.nameStart;
  const word = length === 4 ? POST : length === 5 ? HOST : null;
  if (word === null) return false;
  for (let i = 0; i < length; i++)
    if ((decoder.nameBuf[decoder.nameStart + i] | 0x20) !== word[i]) return false;
  return true;
}

/**
 * An HTTP request on a command port: a browser sending a web page's request to tcpool (a form
 * POST whose body lines would be run as commands). The reply says why, and the connection closes
 * before anything after this line is run.
 */
function crossProtocol(session: Session, decoder: RequestDecoder): ReplyError {
  const owner = session.owner;
  const name = decoder.nameBuf.toString('latin1', decoder.nameStart, decoder.nameEnd);
  owner.count('cross_protocol_rejections');
  owner.throttle.warn(
    'Cross-protocol request',
    `Possible cross-protocol attack: an HTTP request (${name}) from ${session.peer} on a command port; connection closed`,
  );
  session.closeAfterReply();
  return replyErrors.crossProtocol;
}

/**
 * Runs a command that was found: AUTH, rate limit, arity, MULTI, then the handler. The sampling
 * countdown (src/tracing/) sends the rare sampled command, or one whose client named a trace
 * parent, through traceOrRun().
 */
export function execute(
  session: Session,
  spec: CommandSpec,
  args: Buffer[],
): Reply | Promise<Reply> {
  if (untraced(session)) return run(session, spec, args);
  return traceOrRun(session, spec, args);
}

function traceOrRun(session: Session, spec: CommandSpec, args: Buffer[]): Reply | Promise<Reply> {
  return sampled(session) ? traced(session, spec, args) : run(session, spec, args);
}

/** execute() with a span around it (TRACING on): its outcome is the reply, async ones too. */
function traced(session: Session, spec: CommandSpec, args: Buffer[]): Reply | Promise<Reply> {
  const start = spanStart();
  const reply = run(session, spec, args);
  if (!(reply instanceof Promise)) {
    endCommandSpan(session, spec, start, reply);
    return reply;
  }
  return reply.then(
    (r) => {
      endCommandSpan(session, spec, start, r);
      return r;
    },
    (err: unknown) => {
      endCommandSpan(session, spec, start, undefined);
      throw err;
    },
  );
}

function run(session: Session, spec: CommandSpec, args: Buffer[]): Reply | Promise<Reply> {
  session.lastCommand = spec.name;
  if (!session.authenticated && !spec.noAuth)
    return refuse(session, replyErrors.authRequired, spec);
  const access = session.owner.access;
  if (access.rateLimited && spec.cost !== 0) {
    // A command may cost more than one token (its definition's `cost`).
    while (session.rateTokens < spec.cost) {
      const n = access.takeRateTokens(session.admitted.ipEntry, session.peer);
      if (n === 0) break;
      session.rateTokens += n;
    }
    if (session.rateTokens < spec.cost) return refuse(session, replyErrors.rateLimited, spec);
    session.rateTokens -= spec.cost;
  }
  const arityError = checkArity(spec, args.length);
  if (arityError !== null) return refuse(session, arityError, spec);
  // RESP2 subscribe mode, as Redis: only (un)subscribing, PING, QUIT and RESET.
  if (
    session.subscriptions !== 0 &&
    inSubscribeMode(session) &&
    !SUBSCRIBE_MODE_COMMANDS.has(spec.name)
  )
    return subscribeModeOnly(spec.name);
  if (session.transaction?.queues(spec)) return session.transaction.queue(session, spec, args);
  try {
    return spec.run(session, args);
  } catch (err) {
    return internalError(session, spec.name, err);
  }
}

/**
 * A RESP2 client with subscriptions may only (un)subscribe; RESP3 and the line protocol may do
 * anything.
 */
export function inSubscribeMode(session: Session): boolean {
  return session.subscriptions !== 0 && session.respVersion === 2 && session.codec?.name === 'resp';
}

/** A request refused before it ran; inside MULTI it also dooms the transaction. */
export function refuse(
  session: Session,
  error: ReplyError,
  spec: CommandSpec | undefined,
): ReplyError {
  return session.transaction === null ? error : session.transaction.refuse(session, error, spec);
}

/** Logs a handler's failure (its first stack frame) and returns the "Internal error" reply. */
export function internalError(session: Session, name: string, err: unknown): ReplyError {
  const e = err instanceof Error ? err : new Error(String(err));
  const where =
    e.stack
      ?.split('\n')
      .find((l) => l.trimStart().startsWith('at '))
      ?.trim() ?? '';
  const logger = session.owner.logger;
  logger.error(
    `Command ${name} failed for ${session.peer}: ${e.name}: ${e.message} ${where}`.trimEnd(),
  );
  if (e.stack) logger.debug(e.stack);
  return replyErrors.internal;
}
