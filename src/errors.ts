// The one error catalogue. Every failure tcpool reports has a stable code here; messages are built
// only from these templates so that tests, docs and clients can rely on them.
import { formatHostPort } from './net/address.ts';

export const codes = {
  // Replies to a client (the line protocol prefixes them with "ERROR: ").
  ERR_UNKNOWN_COMMAND: 'ERR_UNKNOWN_COMMAND',
  ERR_WRONG_ARITY: 'ERR_WRONG_ARITY',
  ERR_BAD_ARGUMENT: 'ERR_BAD_ARGUMENT',
  ERR_LINE_TOO_LONG: 'ERR_LINE_TOO_LONG',
  ERR_PROTOCOL: 'ERR_PROTOCOL',
  ERR_NOT_SUPPORTED: 'ERR_NOT_SUPPORTED',
  ERR_TOO_MANY_CONNECTIONS: 'ERR_TOO_MANY_CONNECTIONS',
  ERR_INTERNAL: 'ERR_INTERNAL',
  ERR_AUTH_REQUIRED: 'ERR_AUTH_REQUIRED',
  ERR_AUTH_INVALID: 'ERR_AUTH_INVALID',
  ERR_AUTH_BLOCKED: 'ERR_AUTH_BLOCKED',
  ERR_AUTH_NOT_CONFIGURED: 'ERR_AUTH_NOT_CONFIGURED',
  ERR_RATE_LIMIT: 'ERR_RATE_LIMIT',
  ERR_LIMIT_CONNECTIONS_PER_IP: 'ERR_LIMIT_CONNECTIONS_PER_IP',
  ERR_PROTECTED_MODE: 'ERR_PROTECTED_MODE',
  ERR_CROSS_PROTOCOL: 'ERR_CROSS_PROTOCOL',
  ERR_TRANSACTION: 'ERR_TRANSACTION',
  /** A command's own error (CommandError): the reply carries the command's code word. */
  ERR_COMMAND: 'ERR_COMMAND',
  ERR_COMMAND_TIMEOUT: 'ERR_COMMAND_TIMEOUT',
  ERR_SUBSCRIBE_MODE: 'ERR_SUBSCRIBE_MODE',
  // Start-up and configuration.
  ERR_CONFIG_VALUE: 'ERR_CONFIG_VALUE',
  ERR_CONFIG_SYNTAX: 'ERR_CONFIG_SYNTAX',
  ERR_CONFIG_FILE: 'ERR_CONFIG_FILE',
  ERR_CONFIG_OPTION: 'ERR_CONFIG_OPTION',
  ERR_LISTEN: 'ERR_LISTEN',
  ERR_COMMAND_DEFINITION: 'ERR_COMMAND_DEFINITION',
  ERR_COMMANDS_MODULE: 'ERR_COMMANDS_MODULE',
  ERR_COMMANDS_SETUP: 'ERR_COMMANDS_SETUP',
  // The command line's own failures (tcpool client, bench): the command was right, the run failed.
  // ERR_CLIENT_CONNECT and ERR_CLIENT_CONNECTION_LOST are tcpool/client's too.
  ERR_CLIENT_CONNECT: 'ERR_CLIENT_CONNECT',
  ERR_CLIENT_CONNECTION_LOST: 'ERR_CLIENT_CONNECTION_LOST',
  ERR_CLIENT_NO_REPLY: 'ERR_CLIENT_NO_REPLY',
  ERR_CLIENT_AUTH: 'ERR_CLIENT_AUTH',
  // tcpool/client.
  ERR_CLIENT_TIMEOUT: 'ERR_CLIENT_TIMEOUT',
  ERR_CLIENT_QUEUE_FULL: 'ERR_CLIENT_QUEUE_FULL',
  ERR_CLIENT_CLOSED: 'ERR_CLIENT_CLOSED',
  ERR_CLIENT_PROTOCOL: 'ERR_CLIENT_PROTOCOL',
  /**
   * HTTP API: a request it cannot run (bad JSON, wrong content type, unknown path, body too large).
   */
  ERR_HTTP_REQUEST: 'ERR_HTTP_REQUEST',
  // The admin endpoint (src/admin/) and `tcpool ctl`.
  ERR_ADMIN_AUTH: 'ERR_ADMIN_AUTH',
  ERR_ADMIN_NOT_FOUND: 'ERR_ADMIN_NOT_FOUND',
  ERR_RELOAD_FAILED: 'ERR_RELOAD_FAILED',
} as const;

export type ErrorCode = (typeof codes)[keyof typeof codes];

export class TcpoolError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'TcpoolError';
    this.code = code;
  }
}

/**
 * An error sent to the client as a reply. `message` is the line protocol's text (sent as
 * "ERROR: <message>"); `resp` is the RESP text, which starts with Redis's error code word so
 * clients map it to their own error types. Whether the connection then closes is the
 * connection's decision (framing errors, refused connections), not the error's.
 */
export class ReplyError extends TcpoolError {
  readonly resp: string;
  constructor(code: ErrorCode, message: string, resp = `ERR ${message}`) {
    super(code, message);
    this.name = 'ReplyError';
    this.resp = resp;
  }
}

const REPLY_CODE = /^[A-Z][A-Z0-9_]{0,31}$/;

/**
 * What a command throws (or returns) to refuse a request in its own words:
 * `throw new CommandError('NOTFOUND', 'no such user')` replies `ERROR: no such user` on the line
 * protocol, `-NOTFOUND no such user` over RESP (clients see the code word, as Redis's WRONGTYPE),
 * and `status` (default 400) over HTTP.
 */
export class CommandError extends ReplyError {
  /** The code word RESP clients see first ("NOTFOUND"). */
  readonly replyCode: string;
  /** The HTTP status the HTTP API answers with. */
  readonly status: number;
  constructor(replyCode: string, message: string, options: { status?: number } = {}) {
    if (typeof replyCode !== 'string' || !REPLY_CODE.test(replyCode))
      throw new TypeError(
        `CommandError code ${JSON.stringify(replyCode)} must be an upper-case word (A-Z, 0-9, _), e.g. 'NOTFOUND'`,
      );
    const text = String(message).replace(/[\r\n]+/g, ' ');
    super(codes.ERR_COMMAND, text, `${replyCode} ${text}`);
    this.name = 'CommandError';
    this.replyCode = replyCode;
    const status = options.status ?? 400;
    this.status = Number.isInteger(status) && status >= 400 && status <= 599 ? status : 400;
  }
}

/** A RESP2 connection in subscribe mode sent another command (Redis's text). */
export function subscribeModeOnly(name: string): ReplyError {
  return new ReplyError(
    codes.ERR_SUBSCRIBE_MODE,
    `Can't execute '${name}' while subscribed`,
    `ERR Can't execute '${name.toLowerCase()}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`,
  );
}

/**
 * (UN)SUBSCRIBE over a transport that cannot deliver later messages (HTTP: one request, one
 * response). HTTP answers it 501, as it does every ERR_NOT_SUPPORTED.
 */
export function subscribeNeedsStream(name: string): ReplyError {
  return notSupported(
    name,
    'an HTTP response cannot carry the messages that come later; subscribe over RESP, the line protocol or a WebSocket (PUBLISH works over HTTP)',
  );
}

/** An asynchronous command ran past its timeout (COMMAND_TIMEOUT_MS or its own `timeout`). */
export function commandTimedOut(name: string, ms: number): ReplyError {
  return new ReplyError(
    codes.ERR_COMMAND_TIMEOUT,
    `Command ${name} timed out after ${ms} ms`,
    `ERR command '${name.toLowerCase()}' timed out after ${ms} ms`,
  );
}

/**
 * A tcpool/client call that got no reply: ERR_CLIENT_TIMEOUT (no reply within its timeout; it may
 * still have run), ERR_CLIENT_CONNECTION_LOST (written, then the connection dropped: it may have
 * run), ERR_CLIENT_QUEUE_FULL (refused at once: too many calls waiting), ERR_CLIENT_CLOSED
 * (close() was called), ERR_CLIENT_CONNECT, ERR_CLIENT_PROTOCOL (the server sent bytes that are
 * not RESP). Error replies from the server are ServerError (tcpool/client), not this.
 */
export class ClientError extends TcpoolError {
  constructor(code: ErrorCode, message: string) {
    super(code, message);
    this.name = 'ClientError';
  }
}

/** Configuration and command-line usage problems: exit code 2 and the message alone. */
export class ConfigError extends TcpoolError {
  constructor(code: ErrorCode, message: string) {
    super(code, message);
    this.name = 'ConfigError';
  }
}

/** The listener could not start: the process exits with code 1 and a one-line reason. */
export class ListenError extends TcpoolError {
  constructor(message: string) {
    super(codes.ERR_LISTEN, message);
    this.name = 'ListenError';
  }
}

// Replies shared by every connection are built once.
export const replyErrors = {
  unknownCommand: new ReplyError(codes.ERR_UNKNOWN_COMMAND, 'Unknown command'),
  lineTooLong: new ReplyError(codes.ERR_LINE_TOO_LONG, 'Line too long'),
  tooManyConnections: new ReplyError(
    codes.ERR_TOO_MANY_CONNECTIONS,
    'Too many connections',
    'ERR max number of clients reached',
  ),
  internal: new ReplyError(codes.ERR_INTERNAL, 'Internal error'),
  authRequired: new ReplyError(
    codes.ERR_AUTH_REQUIRED,
    'Authentication required',
    'NOAUTH Authentication required.',
  ),
  authInvalid: new ReplyError(
    codes.ERR_AUTH_INVALID,
    'Invalid token',
    'WRONGPASS invalid username-password pair or user is disabled.',
  ),
  authBlocked: new ReplyError(
    codes.ERR_AUTH_BLOCKED,
    'Too many failed authentication attempts from your address, try again later',
    'ERR too many failed authentication attempts from your address, try again later',
  ),
  authNotConfigured: new ReplyError(
    codes.ERR_AUTH_NOT_CONFIGURED,
    'AUTH is not configured on this server',
    'ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?',
  ),
  rateLimited: new ReplyError(
    codes.ERR_RATE_LIMIT,
    'Rate limit exceeded',
    'ERR rate limit exceeded',
  ),
  tooManyFromAddress: new ReplyError(
    codes.ERR_LIMIT_CONNECTIONS_PER_IP,
    'Too many connections from your address',
    'ERR max number of clients per address reached',
  ),
  protectedMode: new ReplyError(
    codes.ERR_PROTECTED_MODE,
    'Protected mode: tcpool listens on a public address without AUTH, so only local clients are served. ' +
      'Set AUTH_TOKENS (see tcpool hash-token), bind HOST to 127.0.0.1, or set PROTECTED_MODE=no',
    'DENIED tcpool is running in protected mode: it listens on a public address without AUTH, so only local clients are served. ' +
      'Set AUTH_TOKENS (see tcpool hash-token), bind HOST to 127.0.0.1, or set PROTECTED_MODE=no',
  ),
  /**
   * An HTTP request line (POST, Host:) on a command port: a web page may be sending commands
   * through the browser. As Redis, the connection is closed before the request's body is read.
   */
  crossProtocol: new ReplyError(
    codes.ERR_CROSS_PROTOCOL,
    'HTTP request on a command port: connection closed (a web page may be sending commands through a browser)',
  ),
} as const;

/** MULTI/EXEC misuse, with Redis's texts (transactions exist only on RESP connections). */
export const transactionErrors = {
  nested: new ReplyError(codes.ERR_TRANSACTION, 'MULTI calls can not be nested'),
  execWithoutMulti: new ReplyError(codes.ERR_TRANSACTION, 'EXEC without MULTI'),
  discardWithoutMulti: new ReplyError(codes.ERR_TRANSACTION, 'DISCARD without MULTI'),
  watchInMulti: new ReplyError(codes.ERR_TRANSACTION, 'WATCH inside MULTI is not allowed'),
  aborted: new ReplyError(
    codes.ERR_TRANSACTION,
    'Transaction discarded because of previous errors',
    'EXECABORT Transaction discarded because of previous errors.',
  ),
} as const;

/** EXEC itself was refused (e.g. wrong arity): the transaction is discarded, as in Redis. */
export function execAborted(cause: ReplyError): ReplyError {
  return new ReplyError(
    codes.ERR_TRANSACTION,
    `Transaction discarded because of: ${cause.message}`,
    `EXECABORT Transaction discarded because of: ${cause.resp.replace(/^ERR /, '')}`,
  );
}

export function wrongArity(name: string, usage: string): ReplyError {
  return new ReplyError(
    codes.ERR_WRONG_ARITY,
    `Wrong number of arguments for '${name}' (usage: ${usage})`,
    `ERR wrong number of arguments for '${name.toLowerCase()}' command`,
  );
}

/** Redis's text, quoting the name and the first arguments as Redis does. */
export function unknownRespCommand(name: Buffer, args: readonly Buffer[]): ReplyError {
  const show = (b: Buffer, max: number) =>
    b.toString('utf8', 0, Math.min(b.length, max)).replace(/[\r\n]/g, ' ');
  let quoted = '';
  for (const a of args) {
    if (quoted.length >= 128) break;
    quoted += `'${show(a, 128 - quoted.length)}' `;
  }
  return new ReplyError(
    codes.ERR_UNKNOWN_COMMAND,
    'Unknown command',
    `ERR unknown command '${show(name, 128)}', with args beginning with: ${quoted}`,
  );
}

/** A malformed RESP request: the reply is sent, then the connection closes (as Redis does). */
export function protocolError(what: string): ReplyError {
  return new ReplyError(
    codes.ERR_PROTOCOL,
    `Protocol error: ${what}`,
    `ERR Protocol error: ${what}`,
  );
}

export function notSupported(name: string, why: string): ReplyError {
  return new ReplyError(codes.ERR_NOT_SUPPORTED, `${name} is not supported: ${why}`);
}

export function badArgument(message: string, resp?: string): ReplyError {
  return new ReplyError(codes.ERR_BAD_ARGUMENT, message, resp);
}

/** Turns a listen() failure into the one-line reason the operator needs. */
export function listenError(err: NodeJS.ErrnoException, host: string, port: number): ListenError {
  const where = formatHostPort(host, port);
  switch (err.code) {
    case 'EADDRINUSE':
      return new ListenError(`Port ${port} is already in use (${where})`);
    case 'EACCES':
    case 'EPERM':
      return new ListenError(`Permission denied binding ${where}`);
    case 'EADDRNOTAVAIL':
      return new ListenError(`Address ${host} is not available on this machine (binding ${where})`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ListenError(`Cannot resolve host ${host}`);
    default:
      return new ListenError(`Cannot listen on ${where}: ${err.code ?? ''} ${err.message}`.trim());
  }
}

// The command line's exit status says who must act: 2, the command line or the configuration is
// wrong (fix it and run again); 1, it was right and the run failed (a refused connection, a port
// in use). src/cli/main.ts is the one place that turns a TcpoolError into a line on stderr and
// this status; anything else thrown is a bug and surfaces as one, with its stack trace.
const USAGE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  codes.ERR_CONFIG_VALUE,
  codes.ERR_CONFIG_SYNTAX,
  codes.ERR_CONFIG_FILE,
  codes.ERR_CONFIG_OPTION,
  codes.ERR_COMMAND_DEFINITION,
  codes.ERR_COMMANDS_MODULE,
]);

export function exitStatus(err: TcpoolError): 1 | 2 {
  return USAGE.has(err.code) ? 2 : 1;
}

/** A command-line option or argument that cannot be used: exit 2. */
export function usageError(message: string): ConfigError {
  return new ConfigError(codes.ERR_CONFIG_OPTION, message);
}

/** `--name raw` is not a whole number in [min, max]. */
export function badIntegerOption(name: string, raw: string, min: number, max: number): ConfigError {
  const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
  return usageError(`Invalid --${name} "${raw}": must be an integer ${range}`);
}

/** `tcpool client` could not reach the server. */
export function connectFailed(where: string, reason: string): TcpoolError {
  return new TcpoolError(codes.ERR_CLIENT_CONNECT, `Could not connect to ${where}: ${reason}`);
}

export function connectionLost(reason: string): TcpoolError {
  return new TcpoolError(codes.ERR_CLIENT_CONNECTION_LOST, `Connection lost: ${reason}`);
}

export function noReply(why: string): TcpoolError {
  return new TcpoolError(codes.ERR_CLIENT_NO_REPLY, why);
}

/** The server refused the token given with --auth or TCPOOL_AUTH; `reply` is its error reply. */
export function authRefused(reply: string): TcpoolError {
  return new TcpoolError(codes.ERR_CLIENT_AUTH, `AUTH refused: ${reply}`);
}
