// What a transport is: how a client's bytes or messages arrive and leave (plain TCP, TLS,
// WebSocket, HTTP/1.1 and HTTP/2). A transport binds its ports through its host, the worker,
// which admits every client at accept (limits, protected mode, PROXY headers), runs the TLS
// handshake, and gives it sessions that share the worker's limits, counters, logs, timeouts and
// shutdown. Adding a transport: a folder under src/transport/ and one line in index.ts.
import type { Server, Socket } from 'node:net';
import type { Config } from '../config/schema.ts';
import type { TlsMaterial } from '../config/tls.ts';
import type { ReplyError } from '../errors.ts';
import type { Admitted } from '../worker/admission.ts';
import type { Channel, Connection, ConnectionOrigin } from '../worker/connection.ts';
import type { SessionOwner } from '../worker/session.ts';

/**
 * How a client refused at accept is told why: the bytes to send, given the first bytes it sent
 * (null when it has not spoken within a moment). null: it is closed without a word (TLS).
 */
export type Refusal = (error: ReplyError, firstBytes: Buffer | null) => string | Buffer;

export interface ListenOptions {
  port: number;
  /** Certificates: the port speaks TLS, with these ALPN protocols offered. */
  tls: TlsMaterial | null;
  alpn?: string[];
  refusal: Refusal;
  /**
   * A client let in (after its TLS handshake, if any). `firstBytes` were read with a PROXY header;
   * `refuseProxyHeader`: this peer may not send one.
   */
  serve(
    socket: Socket,
    admitted: Admitted,
    firstBytes: Buffer | null,
    refuseProxyHeader: boolean,
  ): void;
  /** The plain port's net.Server is bound (the TCP transport takes its accepts from here). */
  listening?(server: Server): void;
}

/** A client the worker tracks for its timeouts, CLIENT LIST and shutdown, whatever carries it. */
export interface TrackedClient {
  readonly peer: string;
  readonly admitted: Admitted;
  readonly createdAt: number;
  expired(
    now: number,
    idleMs: number,
    requestMs: number,
    lingerMs: number,
  ): 'idle' | 'request' | 'linger' | null;
  /** Shutdown: finish what is owed, then close. */
  drain(): void;
  destroy(): void;
  clientInfo(): import('../commands/context.ts').ClientInfo;
}

/** What a worker offers its transports. */
export interface TransportHost extends SessionOwner {
  readonly config: Config;
  /** Binds a port of this worker (SO_REUSEPORT) with admission and, with `tls`, the handshake. */
  listen(options: ListenOptions): Promise<void>;
  /** Serves a client stream with a Connection: the one request loop of every stream transport. */
  open(channel: Channel, origin: Omit<ConnectionOrigin, 'authenticated'>): Connection;
  /** A client that is not a Connection (an HTTP connection) joins the sweeps and shutdown. */
  track(client: TrackedClient): void;
  /** It closed: its admission is given back. */
  untrack(client: TrackedClient): void;
  /** Another session took it over (an HTTP upgrade to WebSocket): its admission stays taken. */
  forget(client: TrackedClient): void;
  /** Whether a client from `ip` starts authenticated (no AUTH, or an exempt network). */
  startsAuthenticated(ip: string): boolean;
  /**
   * One object per key for the worker's lifetime, made by `create` on first use: transports that
   * share a port (WebSocket and HTTP on one port) meet here.
   */
  shared<T>(key: string, create: () => T): T;
  /**
   * A client accepted by a transport's own listener (Bun.listen), given as a net.Socket look-alike:
   * the PROXY header of a trusted proxy, admission, then options.serve, as for host.listen's.
   */
  acceptPlain(socket: Socket, options: ListenOptions): void;
  /**
   * Admission for a client accepted without a net.Socket (the TCP transport's handle path):
   * undefined when the peer is a trusted proxy whose PROXY header must be read first (the
   * socket path does that), null when refused (`socket` is then made, to carry the refusal).
   */
  admitUnread(
    ip: string,
    port: number,
    socket: () => Socket,
    refusal: Refusal,
  ): { admitted: Admitted; refuseProxyHeader: boolean } | null | undefined;
  /** `stop` runs when the worker stops accepting (shutdown): a transport's own listener closes. */
  onStop(stop: () => void): void;
}

export interface Transport {
  readonly name: string;
  /** The config keys of the ports it listens on when set (the supervisor probes each once). */
  portKeys(config: Config): string[];
  /**
   * The config keys that make it speak TLS with this config (TLS_PORT set, WS_TLS …): when any
   * transport has one, the certificate is read and checked once at start-up (config/tls.ts).
   */
  tlsKeys(config: Config): string[];
  /** Binds its ports; `ports` holds each key's resolved port (PORT=0 became a real port). */
  start(
    host: TransportHost,
    ports: Readonly<Record<string, number>>,
    tls: TlsMaterial | null,
  ): Promise<void>;
}
