// What a command handler may see and do. A connection implements this itself, so running a
// command allocates no context object.
import type { Config } from '../config/schema.ts';
import type { SharedStats } from '../stats/counters.ts';
import type { ReplyError } from '../errors.ts';
import type { Reply } from '../protocol/reply.ts';
import type { CommandSpec, Registry } from './registry.ts';
import type { Transaction } from './transaction.ts';

/** One client as CLIENT INFO / CLIENT LIST show it. */
export interface ClientInfo {
  id: number;
  addr: string;
  laddr: string;
  name: string;
  /** Seconds since it connected, and since its last command. */
  age: number;
  idle: number;
  /** The last command it ran, lower case ("client|list" for subcommands). */
  cmd: string;
  /** The protocol's name ("line", "resp") and the transport's ("tcp", "tls", "websocket", "http"). */
  protocol: string;
  transport: string;
  resp: 2 | 3;
  worker: number;
  libName: string;
  libVer: string;
  /** Bytes of unprocessed input, and of replies not yet sent. */
  qbuf: number;
  omem: number;
}

export interface ServerInfo {
  readonly config: Config;
  /** The port actually listened on (PORT=0 resolved). */
  readonly port: number;
  /** Epoch milliseconds when the server started. */
  readonly startedAt: number;
  readonly version: string;
}

/** What AUTH (or HELLO … AUTH) came to. */
export type AuthOutcome = 'ok' | 'invalid' | 'blocked' | 'not-configured';

export interface CommandContext {
  readonly registry: Registry;
  readonly stats: SharedStats;
  readonly server: ServerInfo;
  /** Index of the worker thread serving this client. */
  readonly workerId: number;
  /** "ip:port" of the client. */
  readonly peer: string;
  /**
   * The protocol's and the transport's names, for logs and traces. A reply that differs by
   * protocol is a Forms value (or the encoder's choice), never a test of these.
   */
  readonly protocol: string;
  readonly transport: string;
  /** Whether the client's protocol offers `spec` (HELP lists those). */
  offers(spec: CommandSpec): boolean;
  readonly clientId: number;
  /** RESP version in use (HELLO 3 switches to 3); 2 on the line protocol. */
  respVersion: 2 | 3;
  /**
   * False until AUTH succeeds when AUTH_TOKENS are set (and the client's network is not exempt).
   */
  readonly authenticated: boolean;
  clientName: string;
  libName: string;
  libVer: string;
  /**
   * Checks an AUTH token ("default" is the only user): 'ok' authenticates the connection;
   * failures count against the client's IP across workers.
   */
  authenticate(token: Buffer, user: string | null): Promise<AuthOutcome>;
  /** The open MULTI, null outside one (see transaction.ts). */
  transaction: Transaction | null;
  /**
   * Logs a handler's failure and returns the "Internal error" reply (EXEC runs handlers itself).
   */
  internalError(name: string, err: unknown): ReplyError;
  /** Close the connection once this command's reply has been sent; later input is ignored. */
  closeAfterReply(): void;
  clientInfo(): ClientInfo;
  /** Every client of every worker (asks the other workers through the supervisor). */
  listClients(): Promise<ClientInfo[]>;
  /**
   * Publishes to a pub/sub channel: subscribers in every worker receive it, in publish order.
   * Returns the receivers counted across workers (others' counts may lag a moment).
   */
  publish(channel: string | Buffer, message: string | Buffer): number;
  /**
   * Sends a reply ahead of this command's own (a command that answers several times, such as
   * SUBSCRIBE with several channels). Only while `run` is running synchronously.
   */
  send(reply: Reply): void;
  /** Runs `fn` once when this connection closes (per-connection clean-up). */
  whenClosed(fn: () => void): void;
  /** Channels and patterns this connection is subscribed to. */
  subscriptions: number;
  /**
   * Whether messages the client did not ask for can reach it: true on streams (TCP, TLS,
   * WebSocket), false over HTTP, where SUBSCRIBE is refused.
   */
  readonly pushes: boolean;
}
