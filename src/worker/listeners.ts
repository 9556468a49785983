// A worker's listeners on the shared ports (SO_REUSEPORT: the kernel spreads new connections over
// the workers). The TLS port is a plain TCP listener too: a client is admitted (counted against
// every limit) the moment it is accepted, and only then handed to a tls.Server that is never
// bound, for its handshake; a handshake that does not finish within TLS_HANDSHAKE_TIMEOUT_MS is
// closed. Otherwise a client that sends half a ClientHello would hold a descriptor for minutes
// outside every limit. Accept failures (out of descriptors) are counted and logged, throttled.
import { createServer, type Server, type Socket } from 'node:net';
import {
  createServer as createTlsServer,
  type Server as TlsServer,
  type TLSSocket,
} from 'node:tls';
import type { Config } from '../config/schema.ts';
import type { TlsMaterial } from '../config/tls.ts';
import { listenError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { LogThrottle } from '../log/throttle.ts';
import { formatHostPort, plainIp } from '../net/address.ts';
import type { Counter } from '../stats/counters.ts';
import type { Admitted } from './admission.ts';

export interface ListenerOwner {
  readonly workerId: number;
  readonly logger: Logger;
  readonly throttle: LogThrottle;
  count(counter: Counter, n?: number): void;
  /** A client of the plain port was accepted. */
  acceptPlain(socket: Socket): void;
  /** A client of the TLS port was accepted: admitted, or refused (and closed) with null. */
  admitTls(socket: Socket): Admitted | null;
  /** Its handshake finished: serve it. */
  serveTls(socket: TLSSocket, admitted: Admitted): void;
  /** It closed before its handshake finished. */
  release(admitted: Admitted): void;
}

interface Handshake {
  /** key(raw), kept: a destroyed socket no longer knows its peer. */
  key: string;
  raw: Socket;
  admitted: Admitted;
}

/** A client's address as its raw socket and its TLS socket both report it. */
const key = (s: Socket): string => `${s.remoteAddress}|${s.remotePort}`;

export class Listeners {
  private readonly owner: ListenerOwner;
  private config: Config;
  private readonly servers: Server[] = [];
  private tls: TlsServer | null = null;
  /** Handshakes in progress, by client address (unique while the raw socket is open). */
  private readonly handshakes = new Map<string, Handshake>();

  constructor(owner: ListenerOwner, config: Config) {
    this.owner = owner;
    this.config = config;
  }

  get handshaking(): number {
    return this.handshakes.size;
  }

  /** The plain listener. allowHalfOpen: a client's FIN does not end our side (its replies may be owed). */
  listen(host: string, port: number): Promise<void> {
    const server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) =>
      this.owner.acceptPlain(socket),
    );
    return this.bind(server, host, port);
  }

  /** The TLS listener, beside the plain one or alone; the same admission and protocols behind it. */
  listenTls(host: string, port: number, material: TlsMaterial): Promise<void> {
    this.tls = this.tlsServer(material);
    const raw = createServer({ noDelay: true, allowHalfOpen: true }, (socket) =>
      this.acceptTls(socket),
    );
    return this.bind(raw, host, port);
  }

  /**
   * A reload: new handshakes use a tls.Server made from the new certificate, key, CA and
   * TLS_* settings (the listener itself is ours and stays bound); handshakes under way finish
   * on the old one.
   */
  reconfigure(config: Config, material: TlsMaterial | null): void {
    this.config = config;
    if (this.tls !== null && material !== null) this.tls = this.tlsServer(material);
  }

  /** Never bound: the raw listener hands it each admitted socket for its handshake. */
  private tlsServer(material: TlsMaterial): TlsServer {
    const tls = createTlsServer({
      cert: material.cert,
      key: material.key,
      ca: material.ca ?? undefined,
      requestCert: material.ca !== null,
      rejectUnauthorized: material.ca !== null,
      minVersion: material.minVersion,
      handshakeTimeout: this.config.TLS_HANDSHAKE_TIMEOUT_MS,
      allowHalfOpen: true,
    });
    tls.on('secureConnection', (socket: TLSSocket) => {
      const handshake = this.handshakes.get(key(socket));
      if (handshake === undefined) return socket.destroy(); // cannot happen: admitted at accept
      this.handshakeDone(handshake);
      this.owner.count('tls_handshakes');
      this.owner.serveTls(socket, handshake.admitted);
    });
    tls.on('tlsClientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      const peer = formatHostPort(plainIp(socket.remoteAddress), socket.remotePort);
      socket.destroy(); // a timed-out handshake is not closed by Node itself
      if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') {
        this.owner.count('tls_handshake_timeouts');
        this.owner.throttle.warn(
          'TLS handshake timeout',
          `TLS handshake not finished in ${this.config.TLS_HANDSHAKE_TIMEOUT_MS} ms, closed: ${peer}`,
        );
      } else {
        this.owner.count('tls_handshake_failures');
        this.owner.throttle.warn(
          'TLS handshake failed',
          `TLS handshake failed with ${peer}: ${err.code ?? err.message}`,
        );
      }
    });
    return tls;
  }

  private acceptTls(raw: Socket): void {
    raw.on('error', () => {}); // resets during the handshake; 'close' does the bookkeeping
    const admitted = this.owner.admitTls(raw);
    if (admitted === null) return;
    const handshake: Handshake = { key: key(raw), raw, admitted };
    this.handshakes.set(handshake.key, handshake);
    this.owner.count('tls_handshakes_in_progress', 1);
    raw.once('close', () => {
      if (this.handshakeDone(handshake)) this.owner.release(admitted);
    });
    this.tls!.emit('connection', raw);
  }

  /** Forgets a handshake (finished or abandoned); false if it already was. */
  private handshakeDone(handshake: Handshake): boolean {
    if (this.handshakes.get(handshake.key) !== handshake) return false;
    this.handshakes.delete(handshake.key);
    this.owner.count('tls_handshakes_in_progress', -1);
    return true;
  }

  private bind(server: Server, host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => reject(listenError(err, host, port));
      server.once('error', onError);
      server.listen({ host, port, reusePort: true, backlog: 4096 }, () => {
        server.off('error', onError);
        server.on('error', (err: NodeJS.ErrnoException) => this.acceptFailed(err));
        this.servers.push(server);
        resolve();
      });
    });
  }

  /**
   * accept() failed. With EMFILE/ENFILE libuv closes the waiting connection itself (it keeps a
   * spare descriptor for that), so the loop does not spin; the client is reset without a reply.
   */
  private acceptFailed(err: NodeJS.ErrnoException): void {
    if (err.code === 'EMFILE' || err.code === 'ENFILE') {
      this.owner.count('accept_errors');
      this.owner.throttle.warn(
        'Accept failed',
        `Accept failed: ${err.code} (out of file descriptors): a client was reset without a reply; ` +
          'lower MAX_CONNECTIONS or raise the open files limit (ulimit -n)',
      );
    } else {
      this.owner.logger.error(`Worker ${this.owner.workerId} listener error: ${err.message}`);
    }
  }

  /** Stops accepting; handshakes in progress are closed (nothing is owed to them). */
  close(): void {
    for (const server of this.servers) if (server.listening) server.close();
    for (const { raw } of [...this.handshakes.values()]) raw.destroy();
  }
}
