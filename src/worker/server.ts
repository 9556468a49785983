// A worker's clients: it takes them from its listeners (listeners.ts) through admission
// (admission.ts), serves each with a Connection, keeps the coarse timeout sweep (timeouts.ts)
// running, and drains them all on shutdown.
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { TokenVerifier } from '../auth/tokens.ts';
import type { ClientInfo, ServerInfo } from '../commands/context.ts';
import type { Registry } from '../commands/registry.ts';
import type { Config } from '../config/schema.ts';
import type { TlsMaterial } from '../config/tls.ts';
import type { Logger } from '../log/logger.ts';
import { LogThrottle } from '../log/throttle.ts';
import { blockList, inList, plainIp } from '../net/address.ts';
import { connectionCap, openFilesLimit } from '../net/fd-limit.ts';
import { Output } from '../protocol/output.ts';
import type { Counter, SharedStats } from '../stats/counters.ts';
import { IpTable } from '../stats/ip-table.ts';
import type { WorkerMetrics } from '../stats/metrics.ts';
import { AccessControl } from './access.ts';
import { Admission, type Admitted } from './admission.ts';
import { Connection, type ConnectionLimits, type ConnectionOwner } from './connection.ts';
import { Listeners } from './listeners.ts';
import { SilentConnections, startSweep } from './timeouts.ts';

export interface WorkerServerOptions {
  server: ServerInfo;
  workerId: number;
  registry: Registry;
  stats: SharedStats;
  logger: Logger;
  ipTableBuffer: SharedArrayBuffer | null;
  metrics: WorkerMetrics;
  /** Every worker's clients (CLIENT LIST): the worker entry asks the others through the supervisor. */
  gatherClients?: () => Promise<ClientInfo[]>;
}

export class WorkerServer implements ConnectionOwner {
  readonly registry: Registry;
  readonly stats: SharedStats;
  readonly logger: Logger;
  readonly throttle: LogThrottle;
  // Replaced by a reload (reconfigure); connections read them through their owner each time.
  server: ServerInfo;
  readonly workerId: number;
  access: AccessControl;
  readonly limits: ConnectionLimits;
  readonly output = new Output();
  readonly metrics: WorkerMetrics;
  /** MAX_CONNECTIONS as the file-descriptor limit allows (net/fd-limit.ts). */
  maxConnections = 0;
  draining = false;
  /** Stopped accepting (drain, or retiring in a shrink) while its clients are still served. */
  private retiring: (() => void) | null = null;
  readonly connections = new Set<Connection>();
  private readonly gatherClients: () => Promise<ClientInfo[]>;
  private config: Config;
  private readonly listeners: Listeners;
  private admission!: Admission;
  private readonly silent: SilentConnections;
  private trustedProxies;
  private ipTable: IpTable | null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private onDrained: (() => void) | null = null;

  constructor(options: WorkerServerOptions) {
    const { server, workerId, stats, logger } = options;
    const config: Config = server.config;
    this.config = config;
    this.server = server;
    this.registry = options.registry;
    this.stats = stats;
    this.logger = logger;
    this.throttle = new LogThrottle(logger);
    this.workerId = workerId;
    this.metrics = options.metrics;
    this.gatherClients = options.gatherClients ?? (async () => this.localClients());
    this.limits = limitsOf(config);
    this.ipTable = options.ipTableBuffer === null ? null : new IpTable(options.ipTableBuffer);
    this.access = this.accessControl(config);
    this.silent = new SilentConnections(config.EVICT_SILENT_AFTER_MS);
    this.trustedProxies = blockList(config.TRUSTED_PROXIES);
    this.admit(config);
    this.listeners = new Listeners(this, config);
  }

  private accessControl(config: Config): AccessControl {
    const tokenVerifier = new TokenVerifier(config.AUTH_TOKENS);
    return new AccessControl(config, tokenVerifier, this.ipTable, this.throttle, (c) =>
      this.count(c),
    );
  }

  /** The connection limits and who is admitted, from `config`. */
  private admit(config: Config): void {
    const cap = connectionCap(config.MAX_CONNECTIONS, config.THREAD_POOL_SIZE, openFilesLimit());
    // Every worker finds the same figures; one says so.
    if (cap.warning !== null && this.workerId === 0) this.logger.warn(cap.warning);
    this.maxConnections = cap.max;
    this.admission = new Admission({
      config,
      workerId: this.workerId,
      stats: this.stats,
      throttle: this.throttle,
      ipTable: this.ipTable,
      ipLimits: this.access.ipLimits,
      maxConnections: cap.max,
      authEnabled: this.access.tokenVerifier.enabled,
      evictSilent: () => this.evictSilent(),
    });
  }

  /**
   * A reload: every key that can change live takes effect for this worker's next request and
   * next client; no connection is dropped. Connections keep the protocol limits their decoder
   * was made with; AUTH state, RATE_LIMIT and output limits apply to them at once. A new TLS
   * certificate serves new handshakes. `ipTableBuffer` is set when a per-IP limit was turned on.
   */
  reconfigure(
    config: Config,
    tls: TlsMaterial | null,
    ipTableBuffer: SharedArrayBuffer | null,
  ): void {
    this.config = config;
    this.server = { ...this.server, config };
    this.logger.reconfigure(config.LOG_LEVEL, config.LOG_FORMAT);
    Object.assign(this.limits, limitsOf(config));
    if (this.ipTable === null && ipTableBuffer !== null) this.ipTable = new IpTable(ipTableBuffer);
    this.access = this.accessControl(config);
    this.admit(config);
    this.silent.evictAfterMs = config.EVICT_SILENT_AFTER_MS;
    this.trustedProxies = blockList(config.TRUSTED_PROXIES);
    this.listeners.reconfigure(config, tls);
    if (this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = startSweep(this, config);
    }
  }

  /**
   * Stops accepting while the clients it has are served on; resolves once they have all left or
   * `drainMs` passed (then a shutdown with `shutdownMs` closes the rest, as shutdown does).
   */
  retire(drainMs: number, shutdownMs: number): Promise<void> {
    this.listeners.close();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const done = (): void => {
        if (timer !== null) clearTimeout(timer);
        this.retiring = null;
        void this.shutdown(shutdownMs).then(resolve);
      };
      this.retiring = done;
      timer = setTimeout(done, drainMs);
      if (this.connections.size === 0) done();
    });
  }

  /** Shutdown while retiring: no more waiting for the clients to leave. */
  endRetirement(): void {
    this.retiring?.();
  }

  /** Stops accepting, clients served on (a whole-server drain: readiness probes fail meanwhile). */
  stopAccepting(): void {
    this.listeners.close();
  }
  async listen(host: string, port: number): Promise<void> {
    await this.listeners.listen(host, port);
    this.sweepTimer ??= startSweep(this, this.config);
  }

  async listenTls(host: string, port: number, material: TlsMaterial): Promise<void> {
    await this.listeners.listenTls(host, port, material);
    this.sweepTimer ??= startSweep(this, this.config);
  }

  count(counter: Counter, n = 1): void {
    this.stats.count(this.workerId, counter, n);
  }

  acceptPlain(socket: Socket): void {
    socket.on('error', () => {}); // until a Connection owns it
    const ip = plainIp(socket.remoteAddress);
    const proxyOn = this.config.PROXY_PROTOCOL !== 'off';
    if (proxyOn && inList(this.trustedProxies, ip)) {
      this.admission.readProxyHeader(socket, ip, (realIp, port, rest) =>
        this.serve(socket, realIp, port, rest, false),
      );
    } else {
      this.serve(socket, ip, socket.remotePort ?? 0, null, proxyOn);
    }
  }

  /** Plain clients: admitted, then served at once. */
  private serve(
    socket: Socket,
    ip: string,
    port: number,
    firstBytes: Buffer | null,
    refuseProxyHeader: boolean,
  ): void {
    const admitted = this.admission.admit(socket, plainIp(ip), port, firstBytes, false);
    if (admitted === null) return;
    socket.removeAllListeners('error');
    const conn = this.open(socket, admitted, refuseProxyHeader);
    if (firstBytes !== null) conn.onData(firstBytes);
  }

  /** TLS clients: no PROXY header (it would come before the handshake), otherwise as plain ones. */
  admitTls(socket: Socket): Admitted | null {
    return this.admission.admit(
      socket,
      plainIp(socket.remoteAddress),
      socket.remotePort ?? 0,
      null,
      true,
    );
  }

  serveTls(socket: TLSSocket, admitted: Admitted): void {
    this.open(socket, admitted, false);
  }

  private open(socket: Socket, admitted: Admitted, refuseProxyHeader: boolean): Connection {
    const authenticated = this.access.startsAuthenticated(admitted.ip);
    const conn = new Connection(socket, this, { admitted, authenticated, refuseProxyHeader });
    this.connections.add(conn);
    this.silent.add(conn);
    this.logger.info(`Client connected: ${admitted.peer} (Active: ${this.stats.activeClients()})`);
    return conn;
  }

  release(admitted: Admitted): void {
    this.admission.release(admitted);
    if (this.draining) this.checkDrained();
  }

  spoke(conn: Connection): void {
    this.silent.delete(conn);
  }

  /** The server is full: close the oldest connection that never spoke, if one is old enough. */
  private evictSilent(): boolean {
    const conn = this.silent.takeOldest(Date.now());
    if (conn === null) return false;
    this.count('silent_evictions');
    this.throttle.warn(
      'Silent connection evicted',
      `At MAX_CONNECTIONS (${this.maxConnections}): closed ${conn.peer}, silent for ${this.config.EVICT_SILENT_AFTER_MS} ms or more, to make room`,
    );
    conn.destroy();
    this.connectionClosed(conn); // now, not at 'close': the place is needed at once
    return true;
  }

  /** CLIENT KILL from the admin API: closes it at once, as Redis does; false when not here. */
  killClient(id: number): boolean {
    for (const conn of this.connections) {
      if (conn.clientId !== id) continue;
      conn.destroy();
      this.connectionClosed(conn);
      return true;
    }
    return false;
  }

  localClients(): ClientInfo[] {
    return [...this.connections].map((c) => c.clientInfo());
  }

  listClients(): Promise<ClientInfo[]> {
    return this.gatherClients();
  }

  connectionClosed(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    this.silent.delete(conn);
    const active = this.admission.release(conn.admitted);
    this.logger.info(`Client disconnected: ${conn.peer} (Active: ${active})`);
    if (this.draining) this.checkDrained();
    else if (this.retiring !== null && this.connections.size === 0) this.retiring();
  }

  private checkDrained(): void {
    if (this.connections.size === 0 && this.listeners.handshaking === 0) this.onDrained?.();
  }

  /**
   * Stops accepting; every connection finishes the request it is receiving, answers what it read
   * and closes (lingering); after `timeoutMs` the rest are cut.
   */
  shutdown(timeoutMs: number): Promise<void> {
    this.draining = true;
    this.listeners.close();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      this.onDrained = () => {
        if (timer !== null) clearTimeout(timer);
        if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
        this.onDrained = null;
        resolve();
      };
      timer = setTimeout(() => {
        const left = this.connections.size;
        if (left > 0)
          this.logger.warn(
            `Shutdown timeout: closing ${left} busy connection(s) on worker ${this.workerId}`,
          );
        for (const conn of this.connections) conn.destroy();
      }, timeoutMs);
      for (const conn of [...this.connections]) conn.drain();
      this.checkDrained();
    });
  }
}

function limitsOf(config: Config): ConnectionLimits {
  return {
    maxLineBytes: config.MAX_LINE_BYTES,
    resp: {
      maxLine: config.MAX_LINE_BYTES,
      maxBulk: config.MAX_BULK_BYTES,
      maxArgs: config.MAX_ARGS,
      maxRequest: config.MAX_REQUEST_BYTES,
    },
    outputHighWater: config.OUTPUT_HIGH_WATER_BYTES,
    outputLimit: config.OUTPUT_BUFFER_LIMIT,
  };
}
