// Who is served: protected mode, the per-IP and global connection limits, refusals in the
// client's own protocol (the transport's Refusal), and the PROXY header a trusted proxy sends
// before its client speaks.
// A connection counts against the limits from the moment it is accepted, TLS or not, until its
// socket closes: what admit() takes, release() gives back, exactly once.
import type { Socket } from 'node:net';
import type { Config, ProxyMode } from '../config/schema.ts';
import { type ReplyError, replyErrors } from '../errors.ts';
import type { LogThrottle } from '../log/throttle.ts';
import { formatHostPort, internIp, isLoopback } from '../net/address.ts';
import { parseProxyHeader } from '../protocol/proxy.ts';
import type { Counter, SharedStats } from '../stats/counters.ts';
import type { IpLimits, IpTable } from '../stats/ip-table.ts';
import type { Refusal } from '../transport/transport.ts';

/** How long a refused client has to say which protocol it speaks, so it can be refused in it. */
const REFUSAL_WAIT_MS = 200;
/**
 * Refusals waiting for the client's first bytes, per worker. Past this (a flood) the refusal is
 * written at once, without waiting for its first bytes, so refused clients cannot pile up and use
 * every descriptor.
 */
const REFUSALS_WAITING_MAX = 16;
/** How long a trusted proxy has to send its PROXY header. */
const PROXY_HEADER_TIMEOUT_MS = 5000;

/** A client admit() let in: what its connection needs, and what release() gives back. */
export interface Admitted {
  /** The client's real address (from the PROXY header when there was one), and "ip:port". */
  ip: string;
  peer: string;
  /** Its entry in the per-IP table, -1 when none. */
  ipEntry: number;
  /** Set once release() ran. */
  released: boolean;
}

export interface AdmissionDeps {
  config: Config;
  workerId: number;
  stats: SharedStats;
  throttle: LogThrottle;
  ipTable: IpTable | null;
  ipLimits: IpLimits;
  /** MAX_CONNECTIONS, or fewer when file descriptors are short (net/fd-limit.ts). */
  maxConnections: number;
  /** No AUTH configured: protected mode may apply. */
  authEnabled: boolean;
  /** Closes one connection that never spoke to make room; false when there is none old enough. */
  evictSilent: () => boolean;
}

export class Admission {
  private readonly deps: AdmissionDeps;
  private readonly protectedMode: boolean;
  private refusalsWaiting = 0;

  constructor(deps: AdmissionDeps) {
    this.deps = deps;
    const { config } = deps;
    this.protectedMode = config.PROTECTED_MODE && !deps.authEnabled && !isLoopback(config.HOST);
  }

  private count(counter: Counter): void {
    this.deps.stats.count(this.deps.workerId, counter);
  }

  /**
   * Counts the client against every limit, or refuses it (the refusal is sent here) and returns
   * null. `firstBytes` are bytes already read (after a PROXY header); without a `refusal` (TLS)
   * a client is refused by closing, since it could only read a refusal after a handshake.
   */
  admit(
    socket: Socket | (() => Socket),
    ip: string,
    port: number,
    firstBytes: Buffer | null,
    refusal: Refusal | null,
  ): Admitted | null {
    const { config, throttle } = this.deps;
    const peer = formatHostPort(ip, port);
    if (this.protectedMode && !isLoopback(ip)) {
      this.count('protected_mode_rejections');
      throttle.warn(
        'Protected mode',
        `Connection refused by protected mode: ${peer} (no AUTH, HOST ${config.HOST})`,
      );
      return this.refuseWith(socket, replyErrors.protectedMode, firstBytes, refusal);
    }
    let ipEntry = -1;
    const table = this.deps.ipTable;
    if (table !== null) {
      const entry = table.connect(ip, config.MAX_CONNECTIONS_PER_IP, this.deps.ipLimits);
      if (entry === null) {
        this.count('rejected_per_ip');
        throttle.warn(
          'Connection rejected per IP',
          `Connection rejected: ${peer} (Too many connections from this address, limit ${config.MAX_CONNECTIONS_PER_IP})`,
        );
        return this.refuseWith(socket, replyErrors.tooManyFromAddress, firstBytes, refusal);
      }
      ipEntry = entry;
    }
    const { stats, workerId, maxConnections } = this.deps;
    let active = stats.acquireConnection(workerId, maxConnections, false);
    // Full: a connection that never sent a byte for EVICT_SILENT_AFTER_MS makes room.
    if (active === 0 && this.deps.evictSilent())
      active = stats.acquireConnection(workerId, maxConnections, false);
    if (active === 0) {
      table?.disconnect(ipEntry);
      this.count('rejected');
      throttle.warn(
        'Connection rejected',
        `Connection rejected: ${peer} (Too many connections, limit ${maxConnections})`,
      );
      return this.refuseWith(socket, replyErrors.tooManyConnections, firstBytes, refusal);
    }
    return { ip: internIp(ip), peer, ipEntry, released: false };
  }

  /**
   * Sends a refusal from admit() (a method, not a closure made on every accept). A client
   * accepted without a net.Socket gets one here, to carry it.
   */
  private refuseWith(
    socket: Socket | (() => Socket),
    error: ReplyError,
    firstBytes: Buffer | null,
    refusal: Refusal | null,
  ): null {
    const s = typeof socket === 'function' ? socket() : socket;
    if (refusal === null) s.end(() => s.destroy());
    else this.refuse(s, error, firstBytes, refusal);
    return null;
  }

  /** Gives back what admit() took; returns the active clients left (-1 if already released). */
  release(admitted: Admitted): number {
    if (admitted.released) return -1;
    admitted.released = true;
    this.deps.ipTable?.disconnect(admitted.ipEntry);
    return this.deps.stats.releaseConnection(this.deps.workerId);
  }

  /** Refuses in the client's own protocol when it speaks at once (Redis clients do). */
  private refuse(
    socket: Socket,
    error: ReplyError,
    firstBytes: Buffer | null,
    refusal: Refusal,
  ): void {
    let timer: NodeJS.Timeout | undefined;
    const send = (first: Buffer | null): void => {
      if (timer !== undefined) {
        clearTimeout(timer);
        this.refusalsWaiting--;
      }
      socket.removeAllListeners('data');
      socket.end(refusal(error, first), () => socket.destroy());
      // Whatever else the client sent is read and dropped: unread input would turn the close into
      // a reset, and a reset can destroy the refusal before the client reads it.
      socket.resume();
    };
    if (firstBytes !== null || this.refusalsWaiting >= REFUSALS_WAITING_MAX)
      return send(firstBytes);
    this.refusalsWaiting++;
    timer = setTimeout(() => send(null), REFUSAL_WAIT_MS);
    socket.once('data', send);
    socket.once('close', () => {
      if (timer !== undefined) clearTimeout(timer);
    });
  }

  /** A trusted proxy speaks first: its header names the real client, then `then` admits it. */
  readProxyHeader(
    socket: Socket,
    proxyIp: string,
    then: (ip: string, port: number, rest: Buffer | null) => void,
  ): void {
    let buf: Buffer = Buffer.alloc(0);
    const fail = (reason: string): void => {
      this.count('proxy_rejections');
      this.deps.throttle.warn(
        'PROXY header rejected',
        `PROXY header rejected from ${formatHostPort(proxyIp, socket.remotePort)}: ${reason}`,
      );
      socket.destroy();
    };
    const timer = setTimeout(() => fail('no header within 5 s'), PROXY_HEADER_TIMEOUT_MS);
    const mode = this.deps.config.PROXY_PROTOCOL as Exclude<ProxyMode, 'off'>;
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const verdict = parseProxyHeader(buf, mode);
      if (verdict.kind === 'more') return;
      clearTimeout(timer);
      socket.off('data', onData);
      if (verdict.kind === 'error') return fail(verdict.reason);
      const source = verdict.source ?? { address: proxyIp, port: socket.remotePort ?? 0 };
      const rest = verdict.consumed < buf.length ? buf.subarray(verdict.consumed) : null;
      then(source.address, source.port, rest);
    };
    socket.on('data', onData);
    socket.on('close', () => clearTimeout(timer));
  }
}
