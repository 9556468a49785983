// A worker's own listener on the shared port (SO_REUSEPORT: the kernel spreads new connections over
// the workers) and the set of connections it serves on its event loop.
import { createServer, type Server, type Socket } from 'node:net';
import type { ClientInfo, ServerInfo } from '../commands/context.ts';
import type { Registry } from '../commands/registry.ts';
import type { Config } from '../config/schema.ts';
import { encodeLineReply } from '../protocol/line.ts';
import { detectProtocol } from '../protocol/detect.ts';
import { Output } from '../protocol/output.ts';
import { encodeResp, type RespLimits } from '../protocol/resp.ts';
import { listenError, replyErrors } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { SharedStats } from '../stats/counters.ts';
import { Connection, type ConnectionOwner } from './connection.ts';

const TOO_MANY_LINE = encodeLineReply(replyErrors.tooManyConnections);
const TOO_MANY_RESP = encodeResp(replyErrors.tooManyConnections, 2);
/** How long a refused client has to say which protocol it speaks, so it can be refused in it. */
const REFUSAL_WAIT_MS = 200;

/** "ip:port", with IPv4-mapped IPv6 addresses shown as plain IPv4 and IPv6 in brackets. */
export function peerName(socket: Socket): string {
  let ip = socket.remoteAddress ?? 'unknown';
  if (ip.startsWith('::ffff:') && ip.includes('.')) ip = ip.slice(7);
  return ip.includes(':') ? `[${ip}]:${socket.remotePort}` : `${ip}:${socket.remotePort}`;
}

export class WorkerServer implements ConnectionOwner {
  readonly registry: Registry;
  readonly stats: SharedStats;
  readonly logger: Logger;
  readonly server: ServerInfo;
  readonly workerId: number;
  readonly maxLineBytes: number;
  readonly respLimits: RespLimits;
  readonly outputHighWater: number;
  shuttingDown = false;
  readonly output = new Output();
  /** Asks every worker for its clients (set by the worker entry, which talks to the supervisor). */
  gatherClients: () => Promise<ClientInfo[]> = async () => this.localClients();
  private readonly maxConnections: number;
  private readonly listener: Server;
  private readonly connections = new Set<Connection>();
  private onDrained: (() => void) | null = null;
  private rejectedUnlogged = 0;
  private rejectLogTimer: NodeJS.Timeout | null = null;

  constructor(server: ServerInfo, workerId: number, registry: Registry, stats: SharedStats, logger: Logger) {
    const config: Config = server.config;
    this.server = server;
    this.registry = registry;
    this.stats = stats;
    this.logger = logger;
    this.workerId = workerId;
    this.maxLineBytes = config.MAX_LINE_BYTES;
    this.respLimits = {
      maxLine: config.MAX_LINE_BYTES,
      maxBulk: config.MAX_BULK_BYTES,
      maxArgs: config.MAX_ARGS,
      maxRequest: config.MAX_REQUEST_BYTES,
    };
    this.outputHighWater = config.OUTPUT_HIGH_WATER_BYTES;
    this.maxConnections = config.MAX_CONNECTIONS;
    this.listener = createServer({ noDelay: true }, this.onConnection);
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => reject(listenError(err, host, port));
      this.listener.once('error', onError);
      this.listener.listen({ host, port, reusePort: true, backlog: 4096 }, () => {
        this.listener.off('error', onError);
        this.listener.on('error', (err) => this.logger.error(`Worker ${this.workerId} listener error: ${err.message}`));
        resolve();
      });
    });
  }

  private onConnection = (socket: Socket): void => {
    const peer = peerName(socket);
    const active = this.stats.acquireConnection(this.workerId, this.maxConnections);
    if (active === 0) {
      this.refuse(socket);
      this.logRejection(peer);
      return;
    }
    const conn = new Connection(socket, peer, this);
    this.connections.add(conn);
    this.logger.info(`Client connected: ${peer} (Active: ${active})`);
  };

  /** Refuses in the client's own protocol when it speaks at once (Redis clients do), else in line mode. */
  private refuse(socket: Socket): void {
    socket.on('error', () => {});
    const timer = setTimeout(() => send(TOO_MANY_LINE), REFUSAL_WAIT_MS);
    const send = (reply: string | Buffer): void => {
      clearTimeout(timer);
      socket.removeAllListeners('data');
      socket.end(reply, () => socket.destroy());
    };
    socket.once('data', (chunk: Buffer) => send(detectProtocol(chunk[0]) === 'resp' ? TOO_MANY_RESP : TOO_MANY_LINE));
  }

  localClients(): ClientInfo[] {
    return [...this.connections].map((c) => c.clientInfo());
  }

  listClients(): Promise<ClientInfo[]> {
    return this.gatherClients();
  }

  /** Rejections come in floods; the first is logged at once, the rest summed once a second. */
  private logRejection(peer: string): void {
    if (this.rejectLogTimer !== null) {
      this.rejectedUnlogged++;
      return;
    }
    this.logger.warn(`Connection rejected: ${peer} (Too many connections, limit ${this.maxConnections})`);
    this.rejectLogTimer = setTimeout(() => {
      this.rejectLogTimer = null;
      if (this.rejectedUnlogged > 0) {
        this.logger.warn(`Connections rejected: ${this.rejectedUnlogged} more (Too many connections)`);
        this.rejectedUnlogged = 0;
      }
    }, 1000);
    this.rejectLogTimer.unref();
  }

  connectionClosed(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    const active = this.stats.releaseConnection(this.workerId);
    this.logger.info(`Client disconnected: ${conn.peer} (Active: ${active})`);
    if (this.shuttingDown && this.connections.size === 0) this.onDrained?.();
  }

  /** Stops accepting, lets busy connections finish for up to `timeoutMs`, then closes the rest. */
  shutdown(timeoutMs: number): Promise<void> {
    this.shuttingDown = true;
    this.listener.close();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      this.onDrained = () => {
        if (timer !== null) clearTimeout(timer);
        resolve();
      };
      if (this.connections.size === 0) return this.onDrained();
      timer = setTimeout(() => {
        const left = this.connections.size;
        if (left > 0) this.logger.warn(`Shutdown timeout: closing ${left} busy connection(s) on worker ${this.workerId}`);
        for (const conn of this.connections) conn.socket.destroy();
      }, timeoutMs);
      for (const conn of [...this.connections]) conn.shutdown();
    });
  }
}
