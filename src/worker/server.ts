// A worker's clients: its transports (src/transport/) bind their ports through it, every client
// is admitted at accept (admission.ts) and served by a session: a Connection for streams, the
// transport's own for request/response (HTTP). It keeps the coarse timeout sweep (timeouts.ts)
// running over all of them, and drains them all on shutdown.
import type { Socket } from 'node:net';
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
import { transports } from '../transport/index.ts';
import { Listeners } from '../transport/listeners.ts';
import type {
  ListenOptions,
  Refusal,
  TrackedClient,
  TransportHost,
} from '../transport/transport.ts';
import { AccessControl } from './access.ts';
import { Admission, type Admitted } from './admission.ts';
import {
  type Channel,
  Connection,
  type ConnectionLimits,
  type ConnectionOrigin,
  type ConnectionOwner,
} from './connection.ts';
import { SilentConnections, startSweep } from './timeouts.ts';
import { tickMs } from '../stats/clock.ts';

export interface WorkerServerOptions {
  server: ServerInfo;
  workerId: number;
  registry: Registry;
  stats: SharedStats;
  logger: Logger;
  ipTableBuffer: SharedArrayBuffer | null;
  metrics: WorkerMetrics;
  /**
   * Every worker's clients (CLIENT LIST): the worker entry asks the others through the supervisor.
   */
  gatherClients?: () => Promise<ClientInfo[]>;
}

export class WorkerServer implements ConnectionOwner, TransportHost {
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
  readonly connections = new Set<TrackedClient>();
  config: Config;
  private readonly gatherClients: () => Promise<ClientInfo[]>;
  private readonly listeners: Listeners;
  private admission!: Admission;
  private readonly silent: SilentConnections;
  private trustedProxies;
  private ipTable: IpTable | null;
  private readonly sharedObjects = new Map<string, unknown>();
  private readonly stops: (() => void)[] = [];
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
    this.configureAdmission(config);
    this.listeners = new Listeners(this, config, config.HOST);
  }

  private accessControl(config: Config): AccessControl {
    const tokenVerifier = new TokenVerifier(config.AUTH_TOKENS);
    return new AccessControl(config, tokenVerifier, this.ipTable, this.throttle, (c) =>
      this.count(c),
    );
  }

  /** The connection limits and who is admitted, from `config`. */
  private configureAdmission(config: Config): void {
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
    this.configureAdmission(config);
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
    this.stopListening();
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
    this.stopListening();
  }

  /** CLIENT KILL from the admin API: closes it at once, as Redis does; false when not here. */
  killClient(id: number): boolean {
    for (const conn of this.connections) {
      if (conn.clientInfo().id !== id) continue;
      conn.destroy();
      this.connectionClosed(conn);
      return true;
    }
    return false;
  }

  /** Starts every transport on its ports (`ports`: each port key's resolved port). */
  async start(ports: Readonly<Record<string, number>>, tls: TlsMaterial | null): Promise<void> {
    for (const transport of transports) await transport.start(this, ports, tls);
    this.sweepTimer ??= startSweep(this, this.config);
  }

  listen(options: ListenOptions): Promise<void> {
    return this.listeners.listen(options);
  }

  shared<T>(key: string, create: () => T): T {
    if (!this.sharedObjects.has(key)) this.sharedObjects.set(key, create());
    return this.sharedObjects.get(key) as T;
  }

  onStop(stop: () => void): void {
    this.stops.push(stop);
  }

  /** Every listener of every transport stops accepting (shutdown, a drain, retiring). */
  private stopListening(): void {
    this.listeners.close();
    for (const stop of this.stops.splice(0)) stop();
  }

  count(counter: Counter, n = 1): void {
    this.stats.count(this.workerId, counter, n);
  }

  startsAuthenticated(ip: string): boolean {
    return this.access.startsAuthenticated(ip);
  }

  /** A client of a plain port: a trusted proxy's PROXY header first, then admission. */
  acceptPlain(socket: Socket, options: ListenOptions): void {
    socket.on('error', () => {}); // until a session owns it
    this.clientAddress(socket, (ip, port, rest, refuseProxy) => {
      const admitted = this.admit(socket, ip, port, rest, options.refusal);
      if (admitted === null) return;
      socket.removeAllListeners('error');
      options.serve(socket, admitted, rest, refuseProxy);
    });
  }

  /**
   * Who the client of a just-accepted socket is, on any port, TLS or not: from a trusted proxy
   * (PROXY_PROTOCOL, TRUSTED_PROXIES) the address its PROXY header names, read before anything
   * else (`rest`: what followed the header); otherwise the socket's peer. `refuseProxy`: this
   * peer may not send a header. `then` runs in the same tick as the header's last byte arrived,
   * so whoever reads on from `rest` misses nothing.
   */
  clientAddress(
    socket: Socket,
    then: (ip: string, port: number, rest: Buffer | null, refuseProxy: boolean) => void,
  ): void {
    const ip = plainIp(socket.remoteAddress);
    if (this.readsProxyHeader(ip))
      this.admission.readProxyHeader(socket, ip, (realIp, port, rest) =>
        then(plainIp(realIp), port, rest, false),
      );
    else then(ip, socket.remotePort ?? 0, null, this.proxyOn);
  }

  /** PROXY_PROTOCOL is on: a peer that is not a trusted proxy may not send a header. */
  private get proxyOn(): boolean {
    return this.config.PROXY_PROTOCOL !== 'off';
  }

  /** A trusted proxy's PROXY header names the client: it is read before admission. */
  private readsProxyHeader(ip: string): boolean {
    return this.proxyOn && inList(this.trustedProxies, ip);
  }

  admitUnread(
    ip: string,
    port: number,
    socket: () => Socket,
    refusal: Refusal,
  ): { admitted: Admitted; refuseProxyHeader: boolean } | null | undefined {
    if (this.readsProxyHeader(ip)) return undefined;
    const admitted = this.admission.admit(socket, ip, port, null, refusal);
    return admitted === null ? null : { admitted, refuseProxyHeader: this.proxyOn };
  }

  admit(
    socket: Socket,
    ip: string,
    port: number,
    firstBytes: Buffer | null,
    refusal: Refusal | null,
  ): Admitted | null {
    return this.admission.admit(socket, ip, port, firstBytes, refusal);
  }

  open(channel: Channel, origin: Omit<ConnectionOrigin, 'authenticated'>): Connection {
    const authenticated = this.access.startsAuthenticated(origin.admitted.ip);
    const conn = new Connection(channel, this, { ...origin, authenticated });
    this.connections.add(conn);
    if (!conn.spoken) this.silent.add(conn);
    if (origin.announced !== true)
      this.logger.info(
        `Client connected: ${origin.admitted.peer} (Active: ${this.stats.activeClients()})`,
      );
    return conn;
  }

  track(client: TrackedClient): void {
    this.connections.add(client);
  }

  untrack(client: TrackedClient): void {
    this.connectionClosed(client);
  }

  forget(client: TrackedClient): void {
    this.connections.delete(client);
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
    const conn = this.silent.takeOldest(tickMs());
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

  localClients(): ClientInfo[] {
    return [...this.connections].map((c) => c.clientInfo());
  }

  listClients(): Promise<ClientInfo[]> {
    return this.gatherClients();
  }

  connectionClosed(conn: TrackedClient): void {
    if (!this.connections.delete(conn)) return;
    if (conn instanceof Connection) this.silent.delete(conn);
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
    this.stopListening();
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
    requests: {
      maxLine: config.MAX_LINE_BYTES,
      maxBulk: config.MAX_BULK_BYTES,
      maxArgs: config.MAX_ARGS,
      maxRequest: config.MAX_REQUEST_BYTES,
    },
    outputHighWater: config.OUTPUT_HIGH_WATER_BYTES,
    outputLimit: config.OUTPUT_BUFFER_LIMIT,
  };
}
