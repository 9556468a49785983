// A worker's own listener on the shared port (SO_REUSEPORT: the kernel spreads new connections over
// the workers), the admission of each client (PROXY header, protected mode, connection limits),
// the connections it serves, and the coarse timer that enforces idle and request timeouts.
import { type BlockList, createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { TokenVerifier } from '../auth/tokens.ts';
import type { TlsMaterial } from '../config/tls.ts';
import type { ClientInfo, ServerInfo } from '../commands/context.ts';
import type { Registry } from '../commands/registry.ts';
import type { Config } from '../config/schema.ts';
import { listenError, type ReplyError, replyErrors } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { LogThrottle } from '../log/throttle.ts';
import { detectProtocol } from '../protocol/detect.ts';
import { encodeLineReply } from '../protocol/line.ts';
import { Output } from '../protocol/output.ts';
import { parseProxyHeader } from '../protocol/proxy.ts';
import { encodeResp, type RespLimits } from '../protocol/resp.ts';
import type { Counter, SharedStats } from '../stats/counters.ts';
import { type IpLimits, IpTable } from '../stats/ip-table.ts';
import { Connection, type ConnectionOwner } from './connection.ts';
import { blockList, formatHostPort, inList, isLoopback, plainIp } from '../net/address.ts';

/** How long a refused client has to say which protocol it speaks, so it can be refused in it. */
const REFUSAL_WAIT_MS = 200;
/** How long a trusted proxy has to send its PROXY header. */
const PROXY_HEADER_TIMEOUT_MS = 5000;

export class WorkerServer implements ConnectionOwner {
  readonly registry: Registry;
  readonly stats: SharedStats;
  readonly logger: Logger;
  readonly throttle: LogThrottle;
  readonly server: ServerInfo;
  readonly workerId: number;
  readonly maxLineBytes: number;
  readonly respLimits: RespLimits;
  readonly outputHighWater: number;
  readonly outputLimit: number;
  readonly tokens: TokenVerifier;
  readonly ipTable: IpTable | null;
  readonly ipLimits: IpLimits;
  readonly rateLimited: boolean;
  readonly tokenBatch: number;
  shuttingDown = false;
  readonly output = new Output();
  /** Asks every worker for its clients (set by the worker entry, which talks to the supervisor). */
  gatherClients: () => Promise<ClientInfo[]> = async () => this.localClients();
  private readonly config: Config;
  private readonly listener: Server;
  private tlsListener: Server | null = null;
  private readonly connections = new Set<Connection>();
  private readonly trustedProxies: BlockList;
  private readonly authExempt: BlockList;
  /** Protected mode applies: no AUTH, bound beyond loopback, not switched off. */
  private readonly protectedMode: boolean;
  private sweepTimer: NodeJS.Timeout | null = null;
  private onDrained: (() => void) | null = null;

  constructor(
    server: ServerInfo,
    workerId: number,
    registry: Registry,
    stats: SharedStats,
    logger: Logger,
    ipTableBuffer: SharedArrayBuffer | null,
  ) {
    const config: Config = server.config;
    this.config = config;
    this.server = server;
    this.registry = registry;
    this.stats = stats;
    this.logger = logger;
    this.throttle = new LogThrottle(logger);
    this.workerId = workerId;
    this.maxLineBytes = config.MAX_LINE_BYTES;
    this.respLimits = {
      maxLine: config.MAX_LINE_BYTES,
      maxBulk: config.MAX_BULK_BYTES,
      maxArgs: config.MAX_ARGS,
      maxRequest: config.MAX_REQUEST_BYTES,
    };
    this.outputHighWater = config.OUTPUT_HIGH_WATER_BYTES;
    this.outputLimit = config.OUTPUT_BUFFER_LIMIT;
    this.tokens = new TokenVerifier(config.AUTH_TOKENS);
    this.ipTable = ipTableBuffer === null ? null : new IpTable(ipTableBuffer);
    this.ipLimits = {
      rate: config.RATE_LIMIT,
      rateBurst: config.RATE_LIMIT_BURST || Math.max(1, config.RATE_LIMIT),
      authMaxFailures: config.AUTH_MAX_FAILURES,
      authWindowS: Math.ceil(config.AUTH_FAILURE_WINDOW_MS / 1000),
    };
    this.rateLimited = config.RATE_LIMIT > 0 && this.ipTable !== null;
    // Up to 16 at once, but never more than 1/64 of the burst: a low limit stays exact.
    this.tokenBatch = Math.max(1, Math.min(16, Math.floor(this.ipLimits.rateBurst / 64)));
    this.trustedProxies = blockList(config.TRUSTED_PROXIES);
    this.authExempt = blockList(config.AUTH_EXEMPT_NETWORKS);
    this.protectedMode = config.PROTECTED_MODE && !this.tokens.enabled && !isLoopback(config.HOST);
    this.listener = createServer({ noDelay: true }, this.onConnection);
  }

  listen(host: string, port: number): Promise<void> {
    return this.bind(this.listener, host, port);
  }

  /** The TLS listener, beside the plain one or alone; the same admission and protocols behind it. */
  listenTls(host: string, port: number, material: TlsMaterial): Promise<void> {
    const tls = createTlsServer(
      {
        cert: material.cert,
        key: material.key,
        ca: material.ca ?? undefined,
        requestCert: material.ca !== null,
        rejectUnauthorized: material.ca !== null,
        minVersion: material.minVersion,
        noDelay: true,
      },
      (socket) => this.admitTls(socket),
    );
    tls.on('tlsClientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      this.count('tls_handshake_failures');
      const peer = formatHostPort(plainIp(socket.remoteAddress), socket.remotePort);
      this.throttle.warn(
        'TLS handshake failed',
        `TLS handshake failed with ${peer}: ${err.code ?? err.message}`,
      );
    });
    this.tlsListener = tls;
    return this.bind(tls, host, port);
  }

  private bind(listener: Server, host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => reject(listenError(err, host, port));
      listener.once('error', onError);
      listener.listen({ host, port, reusePort: true, backlog: 4096 }, () => {
        listener.off('error', onError);
        listener.on('error', (err) =>
          this.logger.error(`Worker ${this.workerId} listener error: ${err.message}`),
        );
        if (this.sweepTimer === null) this.startSweep();
        resolve();
      });
    });
  }

  /** TLS clients: no PROXY header (it would come before the handshake), otherwise as plain ones. */
  private admitTls(socket: TLSSocket): void {
    socket.on('error', () => {});
    this.admit(socket, plainIp(socket.remoteAddress), socket.remotePort ?? 0, null, false);
  }

  count(counter: Counter): void {
    this.stats.count(this.workerId, counter);
  }

  private onConnection = (socket: Socket): void => {
    socket.on('error', () => {}); // until a Connection owns it
    const ip = plainIp(socket.remoteAddress);
    if (this.config.PROXY_PROTOCOL !== 'off' && inList(this.trustedProxies, ip)) {
      this.readProxyHeader(socket, ip);
    } else {
      this.admit(socket, ip, socket.remotePort ?? 0, null, this.config.PROXY_PROTOCOL !== 'off');
    }
  };

  /** A trusted proxy speaks first: its header names the real client. */
  private readProxyHeader(socket: Socket, proxyIp: string): void {
    let buf: Buffer = Buffer.alloc(0);
    const fail = (reason: string): void => {
      this.count('proxy_rejections');
      this.throttle.warn(
        'PROXY header rejected',
        `PROXY header rejected from ${formatHostPort(proxyIp, socket.remotePort)}: ${reason}`,
      );
      socket.destroy();
    };
    const timer = setTimeout(() => fail('no header within 5 s'), PROXY_HEADER_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const verdict = parseProxyHeader(buf, this.config.PROXY_PROTOCOL as 'v1' | 'v2' | 'auto');
      if (verdict.kind === 'more') return;
      clearTimeout(timer);
      socket.off('data', onData);
      if (verdict.kind === 'error') return fail(verdict.reason);
      const source = verdict.source ?? { address: proxyIp, port: socket.remotePort ?? 0 };
      const rest = verdict.consumed < buf.length ? buf.subarray(verdict.consumed) : null;
      this.admit(socket, plainIp(source.address), source.port, rest, false);
    };
    socket.on('data', onData);
    socket.on('close', () => clearTimeout(timer));
  }

  /** Decides whether a client is served, then hands it to a Connection. */
  private admit(
    socket: Socket,
    ip: string,
    port: number,
    firstBytes: Buffer | null,
    refuseProxyHeader: boolean,
  ): void {
    const peer = formatHostPort(ip, port);
    if (this.protectedMode && !isLoopback(ip)) {
      this.count('protected_mode_rejections');
      this.throttle.warn(
        'Protected mode',
        `Connection refused by protected mode: ${peer} (no AUTH, HOST ${this.config.HOST})`,
      );
      return this.refuse(socket, replyErrors.protectedMode, firstBytes);
    }
    let slot = -1;
    if (this.ipTable !== null) {
      const s = this.ipTable.connect(ip, this.config.MAX_CONNECTIONS_PER_IP, this.ipLimits);
      if (s === null) {
        this.count('rejected_per_ip');
        this.throttle.warn(
          'Connection rejected per IP',
          `Connection rejected: ${peer} (Too many connections from this address, limit ${this.config.MAX_CONNECTIONS_PER_IP})`,
        );
        return this.refuse(socket, replyErrors.tooManyFromAddress, firstBytes);
      }
      slot = s;
    }
    const active = this.stats.acquireConnection(this.workerId, this.config.MAX_CONNECTIONS);
    if (active === 0) {
      this.ipTable?.disconnect(slot);
      this.throttle.warn(
        'Connection rejected',
        `Connection rejected: ${peer} (Too many connections, limit ${this.config.MAX_CONNECTIONS})`,
      );
      return this.refuse(socket, replyErrors.tooManyConnections, firstBytes);
    }
    socket.removeAllListeners('error');
    const authenticated = !this.tokens.enabled || inList(this.authExempt, ip);
    const conn = new Connection(socket, peer, this, { ip, slot, authenticated, refuseProxyHeader });
    this.connections.add(conn);
    this.logger.info(`Client connected: ${peer} (Active: ${active})`);
    if (firstBytes !== null) conn.onData(firstBytes);
  }

  /** Refuses in the client's own protocol when it speaks at once (Redis clients do), else in line mode. */
  private refuse(socket: Socket, error: ReplyError, firstBytes: Buffer | null): void {
    let timer: NodeJS.Timeout | undefined;
    const send = (first: Buffer | null): void => {
      clearTimeout(timer);
      socket.removeAllListeners('data');
      const resp = first !== null && first.length > 0 && detectProtocol(first[0]) === 'resp';
      socket.end(resp ? encodeResp(error, 2) : encodeLineReply(error), () => socket.destroy());
    };
    if (firstBytes !== null) return send(firstBytes);
    timer = setTimeout(() => send(null), REFUSAL_WAIT_MS);
    socket.once('data', send);
  }

  localClients(): ClientInfo[] {
    return [...this.connections].map((c) => c.clientInfo());
  }

  listClients(): Promise<ClientInfo[]> {
    return this.gatherClients();
  }

  connectionClosed(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    this.ipTable?.disconnect(conn.ipSlot);
    const active = this.stats.releaseConnection(this.workerId);
    this.logger.info(`Client disconnected: ${conn.peer} (Active: ${active})`);
    if (this.shuttingDown && this.connections.size === 0) this.onDrained?.();
  }

  /** One coarse timer per worker enforces IDLE_TIMEOUT_MS and REQUEST_TIMEOUT_MS: no timer per client. */
  private startSweep(): void {
    const idle = this.config.IDLE_TIMEOUT_MS;
    const request = this.config.REQUEST_TIMEOUT_MS;
    const shortest = Math.min(idle || Infinity, request || Infinity);
    if (shortest === Infinity) return;
    const every = Math.max(50, Math.min(1000, Math.floor(shortest / 4)));
    this.sweepTimer = setInterval(() => {
      const now = Date.now();
      for (const conn of this.connections) {
        const expired = conn.expired(now, idle, request);
        if (expired === 'idle') {
          this.count('idle_timeouts');
          this.throttle.warn('Idle timeout', `Client idle for ${idle} ms, closed: ${conn.peer}`);
          conn.socket.destroy();
        } else if (expired === 'request') {
          this.count('request_timeouts');
          this.throttle.warn(
            'Request timeout',
            `Incomplete request for ${request} ms, closed: ${conn.peer}`,
          );
          conn.socket.destroy();
        }
      }
    }, every);
    this.sweepTimer.unref();
  }

  /** Stops accepting, lets busy connections finish for up to `timeoutMs`, then closes the rest. */
  shutdown(timeoutMs: number): Promise<void> {
    this.shuttingDown = true;
    if (this.listener.listening) this.listener.close();
    this.tlsListener?.close();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      this.onDrained = () => {
        if (timer !== null) clearTimeout(timer);
        if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
        resolve();
      };
      if (this.connections.size === 0) return this.onDrained();
      timer = setTimeout(() => {
        const left = this.connections.size;
        if (left > 0)
          this.logger.warn(
            `Shutdown timeout: closing ${left} busy connection(s) on worker ${this.workerId}`,
          );
        for (const conn of this.connections) conn.socket.destroy();
      }, timeoutMs);
      for (const conn of [...this.connections]) conn.shutdown();
    });
  }
}
