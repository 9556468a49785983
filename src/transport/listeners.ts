// A worker's listeners on the shared ports (SO_REUSEPORT: the kernel spreads new connections over
// the workers), for every transport. A TLS port is a plain TCP listener too: a client is admitted
// (counted against every limit) the moment it is accepted, and only then handed to a tls.Server
// that is never bound, for its handshake; a handshake that does not finish within
// TLS_HANDSHAKE_TIMEOUT_MS is closed. Otherwise a client that sends half a ClientHello would hold
// a descriptor for minutes outside every limit. Accept failures (out of descriptors) are counted
// and logged, throttled.
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
import type { Admitted } from '../worker/admission.ts';
import type { ListenOptions, Refusal } from './transport.ts';

export interface ListenerOwner {
  readonly workerId: number;
  readonly logger: Logger;
  readonly throttle: LogThrottle;
  count(counter: Counter, n?: number): void;
  /** A client of a plain port was accepted (PROXY header, admission, then options.serve). */
  acceptPlain(socket: Socket, options: ListenOptions): void;
  /** The client's address: a trusted proxy's PROXY header first (then `rest` followed it). */
  clientAddress(
    socket: Socket,
    then: (ip: string, port: number, rest: Buffer | null, refuseProxy: boolean) => void,
  ): void;
  /** A client of a TLS port was accepted: admitted, or refused (and closed) with null. */
  admit(
    socket: Socket,
    ip: string,
    port: number,
    firstBytes: Buffer | null,
    refusal: Refusal | null,
  ): Admitted | null;
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
  private readonly host: string;
  private readonly servers: Server[] = [];
  /** Each TLS port's handshake server, replaced by a reload (new certificate, TLS_* settings). */
  private readonly tlsPorts: { options: ListenOptions; tls: TlsServer }[] = [];
  /** Handshakes in progress, by client address (unique while the raw socket is open). */
  private readonly handshakes = new Map<string, Handshake>();

  constructor(owner: ListenerOwner, config: Config, host: string) {
    this.owner = owner;
    this.config = config;
    this.host = host;
  }

  get handshaking(): number {
    return this.handshakes.size;
  }

  /** allowHalfOpen: a client's FIN does not end our side (its replies may be owed). */
  listen(options: ListenOptions): Promise<void> {
    if (options.tls !== null) return this.listenTls(options);
    const server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) =>
      this.owner.acceptPlain(socket, options),
    );
    return this.bind(server, options.port, options.listening);
  }

  /**
   * A reload: new handshakes use a tls.Server made from the new certificate, key, CA and
   * TLS_* settings (the listeners themselves stay bound); handshakes under way finish on the old.
   */
  reconfigure(config: Config, material: TlsMaterial | null): void {
    this.config = config;
    if (material === null) return;
    for (const port of this.tlsPorts) port.tls = this.tlsServer(port.options, material);
  }

  /** A TLS port: the same admission behind it, then the handshake, then options.serve. */
  private listenTls(options: ListenOptions): Promise<void> {
    const port = { options, tls: this.tlsServer(options, options.tls!) };
    this.tlsPorts.push(port);
    const raw = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
      socket.on('error', () => {}); // resets during the handshake; 'close' does the bookkeeping
      // A trusted proxy's PROXY header comes before the ClientHello (HAProxy's send-proxy in
      // front of a TLS port it does not terminate): the client it names is the one admitted.
      this.owner.clientAddress(socket, (ip, clientPort, rest) => {
        // TLS clients are refused by closing: the refusal could only be read after a handshake.
        const admitted = this.owner.admit(socket, ip, clientPort, null, null);
        if (admitted === null) return;
        const handshake: Handshake = { key: key(socket), raw: socket, admitted };
        this.handshakes.set(handshake.key, handshake);
        this.owner.count('tls_handshakes_in_progress', 1);
        socket.once('close', () => {
          if (this.handshakeDone(handshake)) this.owner.release(admitted);
        });
        if (rest !== null) {
          // The start of the ClientHello came with the header: the handshake reads it first.
          socket.pause();
          socket.unshift(rest);
        }
        port.tls.emit('connection', socket);
      });
    });
    return this.bind(raw, options.port);
  }

  /** Never bound: a TLS port's raw listener hands it each admitted socket for its handshake. */
  private tlsServer(options: ListenOptions, material: TlsMaterial): TlsServer {
    const tls = createTlsServer({
      cert: material.cert,
      key: material.key,
      ca: material.ca ?? undefined,
      requestCert: material.ca !== null,
      rejectUnauthorized: material.ca !== null,
      minVersion: material.minVersion,
      handshakeTimeout: this.config.TLS_HANDSHAKE_TIMEOUT_MS,
      allowHalfOpen: true,
      ALPNProtocols: options.alpn,
    });
    tls.on('secureConnection', (socket: TLSSocket) => {
      const handshake = this.handshakes.get(key(socket));
      if (handshake === undefined) return socket.destroy(); // cannot happen: admitted at accept
      this.handshakeDone(handshake);
      this.owner.count('tls_handshakes');
      options.serve(socket, handshake.admitted, null, false);
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

  /** Forgets a handshake (finished or abandoned); false if it already was. */
  private handshakeDone(handshake: Handshake): boolean {
    if (this.handshakes.get(handshake.key) !== handshake) return false;
    this.handshakes.delete(handshake.key);
    this.owner.count('tls_handshakes_in_progress', -1);
    return true;
  }

  private bind(server: Server, port: number, listening?: (server: Server) => void): Promise<void> {
    const host = this.host;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => reject(listenError(err, host, port));
      server.once('error', onError);
      server.listen({ host, port, reusePort: true, backlog: 4096 }, () => {
        server.off('error', onError);
        server.on('error', (err: NodeJS.ErrnoException) => this.acceptFailed(err));
        this.servers.push(server);
        listening?.(server);
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
