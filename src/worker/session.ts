// One client as commands see it, whatever carries its requests: who it is, whether it has
// authenticated, its RATE_LIMIT tokens, its names, its RESP version and its open MULTI. A stream
// connection (TCP, TLS, WebSocket) is one long session; an HTTP request is a short one. The
// session implements CommandContext itself, so running a command allocates no context object.
import type { AuthOutcome, ClientInfo, CommandContext, ServerInfo } from '../commands/context.ts';
import type { CommandSpec, Registry } from '../commands/registry.ts';
import type { Transaction } from '../commands/transaction.ts';
import type { ReplyError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { LogThrottle } from '../log/throttle.ts';
import type { Output } from '../protocol/output.ts';
import type { Protocol, RequestLimits } from '../protocol/protocol.ts';
import type { Reply } from '../protocol/reply.ts';
import { currentHub } from '../pubsub/hub.ts';
import type { Counter, SharedStats } from '../stats/counters.ts';
import type { AccessControl } from './access.ts';
import type { Admitted } from './admission.ts';
import { internalError } from './executor.ts';
import type { WorkerMetrics } from '../stats/metrics.ts';
import type { TraceParent } from '../tracing/tracing.ts';
import { tickMs } from '../stats/clock.ts';

/** What every session of a worker shares. */
export interface SessionOwner {
  readonly registry: Registry;
  readonly stats: SharedStats;
  readonly logger: Logger;
  readonly throttle: LogThrottle;
  readonly server: ServerInfo;
  readonly workerId: number;
  readonly access: AccessControl;
  readonly limits: ConnectionLimits;
  /** Shutdown began. */
  readonly draining: boolean;
  /** One per worker: processing a batch is synchronous, so all connections can share it. */
  readonly output: Output;
  /** This worker's row of per-command figures in shared memory (src/stats/metrics.ts). */
  readonly metrics: WorkerMetrics;
  count(counter: Counter, n?: number): void;
  listClients(): Promise<ClientInfo[]>;
}

export interface ConnectionLimits {
  requests: RequestLimits;
  /** OUTPUT_HIGH_WATER_BYTES: past it, reading stops until the client takes its replies. */
  outputHighWater: number;
  /** OUTPUT_BUFFER_LIMIT; 0 = none. */
  outputLimit: number;
}

/** How a client was let in and what carries it. */
export interface SessionOrigin {
  admitted: Admitted;
  /** No AUTH configured, or the client's network is exempt. */
  authenticated: boolean;
  /** "tcp", "tls", "websocket", "http" … */
  transport: string;
  /** The client's id when it has one already (HTTP requests share their connection's). */
  clientId?: number;
}

export abstract class Session implements CommandContext {
  readonly owner: SessionOwner;
  readonly admitted: Admitted;
  readonly clientId: number;
  readonly transport: string;
  authenticated: boolean;
  /** RATE_LIMIT tokens this session has taken from its IP's bucket and not used yet. */
  rateTokens = 0;
  /** The metrics index of the command being executed (src/stats/metrics.ts; 0: unknown). */
  cmd = 0;
  respVersion: 2 | 3 = 2;
  /**
   * CLIENT SETNAME and SETINFO's values: one object, made by the first that is not empty (most
   * clients never name themselves; RESET's clearing makes none).
   */
  private named: { clientName: string; libName: string; libVer: string } | null = null;
  transaction: Transaction | null = null;
  /** The command being (or last) run, for CLIENT LIST and error logs. */
  lastCommand = 'NULL';
  readonly createdAt = tickMs();
  lastCommandAt = this.createdAt;
  /** The W3C trace context the client sent (HTTP and WebSocket traceparent): its spans' parent. */
  traceContext: TraceParent | null = null;
  /** The codec; stream connections choose it from their first byte. */
  abstract readonly codec: Protocol | null;
  /**
   * Pub/sub (src/pubsub/): channels and patterns subscribed to; RESP2 is then in subscribe mode.
   */
  subscriptions = 0;
  /**
   * Whether messages the client did not ask for can reach it (pub/sub): a stream can take them
   * (TCP, TLS, WebSocket); an HTTP request cannot.
   */
  abstract readonly pushes: boolean;

  constructor(owner: SessionOwner, origin: SessionOrigin) {
    this.owner = owner;
    this.admitted = origin.admitted;
    this.authenticated = origin.authenticated;
    this.transport = origin.transport;
    this.clientId = origin.clientId ?? owner.stats.nextClientId();
  }

  get peer(): string {
    return this.admitted.peer;
  }
  get clientName(): string {
    return this.named === null ? '' : this.named.clientName;
  }
  set clientName(name: string) {
    this.rename('clientName', name);
  }
  get libName(): string {
    return this.named === null ? '' : this.named.libName;
  }
  set libName(name: string) {
    this.rename('libName', name);
  }
  get libVer(): string {
    return this.named === null ? '' : this.named.libVer;
  }
  set libVer(version: string) {
    this.rename('libVer', version);
  }
  /** Sets one of `named`'s values; clearing one that was never set makes nothing. */
  private rename(key: 'clientName' | 'libName' | 'libVer', value: string): void {
    if (value === '' && this.named === null) return;
    this.named ??= { clientName: '', libName: '', libVer: '' };
    this.named[key] = value;
  }
  get registry(): Registry {
    return this.owner.registry;
  }
  get stats(): SharedStats {
    return this.owner.stats;
  }
  get server(): ServerInfo {
    return this.owner.server;
  }
  get workerId(): number {
    return this.owner.workerId;
  }
  get protocol(): string {
    return this.codec?.name ?? 'none';
  }

  offers(spec: CommandSpec): boolean {
    return this.codec === null || this.codec.offers(spec);
  }

  abstract closeAfterReply(): void;
  abstract clientInfo(): ClientInfo;
  /** A reply ahead of the command's own (SUBSCRIBE confirms each channel), in order. */
  abstract send(reply: Reply): void;
  /** Runs `fn` once when the client's connection closes (at once if it has). */
  abstract whenClosed(fn: () => void): void;

  /** PUBLISH from a command: subscribers in every worker receive it, in publish order. */
  publish(channel: string | Buffer, message: string | Buffer): number {
    return currentHub().publish(bytesOf(channel), bytesOf(message));
  }

  listClients(): Promise<ClientInfo[]> {
    return this.owner.listClients();
  }

  internalError(name: string, err: unknown): ReplyError {
    return internalError(this, name, err);
  }

  /** Checks a token (AUTH, HELLO … AUTH); failures are counted per IP across workers. */
  async authenticate(token: Buffer, user: string | null): Promise<AuthOutcome> {
    const outcome = await this.owner.access.authenticate(
      this.admitted.ipEntry,
      this.peer,
      token,
      user,
    );
    if (outcome === 'ok') this.authenticated = true;
    return outcome;
  }
}

const bytesOf = (v: string | Buffer): Buffer => (typeof v === 'string' ? Buffer.from(v) : v);
