// The main thread: resolves the port once, starts the worker pool, replaces workers that die, and
// runs the shutdown in order. It never touches a client socket.
import { createServer, type AddressInfo } from 'node:net';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Config } from '../config/schema.ts';
import type { TlsMaterial } from '../config/tls.ts';
import { listenError, TcpoolError, codes } from '../errors.ts';
import type { Logger, LogSink } from '../log/logger.ts';
import { SharedStats } from '../stats/counters.ts';
import { resolvePorts } from '../transport/ports.ts';
import { IpTable } from '../stats/ip-table.ts';
import { VERSION } from '../version.ts';
import type { FromWorker, QueryKind, ToWorker, WorkerData } from './messages.ts';

/** How long a drained worker has to end its own thread before it is terminated. */
const WORKER_EXIT_GRACE_MS = 1000;

// Next to this file in both layouts: src/ (.ts, run directly) and dist/ (.js, built).
const WORKER_URL = new URL(
  `../worker/main${extname(fileURLToPath(import.meta.url))}`,
  import.meta.url,
);

/** Binds the port exclusively once, so that a port held by anyone (even another tcpool) is refused. */
export function probePort(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err) => reject(listenError(err, host, port)));
    probe.listen({ host, port, exclusive: true }, () => {
      const actual = (probe.address() as AddressInfo).port;
      probe.close(() => resolve(actual));
    });
  });
}

interface Slot {
  worker: Worker | null;
  /** During shutdown: the worker has closed its listener. */
  stoppedAccepting: (() => void) | null;
  /** Resolves when the worker reported that its clients are gone during shutdown. */
  drained: (() => void) | null;
  lastCrash: number;
  backoffMs: number;
  restartTimer: NodeJS.Timeout | null;
}

/** What a worker's start-up has come to, for its exit handler. */
interface Startup {
  ready: boolean;
  crash: Error | null;
  fail: (err: Error) => void;
}

interface Query {
  askerSlot: number;
  askerId: number;
  remaining: number;
  results: unknown[];
  timer: NodeJS.Timeout;
}

/** A worker that does not answer a query in time is left out of the result. */
const QUERY_TIMEOUT_MS = 1000;
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 10_000;

export class Supervisor {
  readonly config: Config;
  readonly stats: SharedStats;
  /** Shared by the workers when a per-IP limit needs it. */
  readonly ipTable: IpTable | null;
  readonly tls: TlsMaterial | null;
  port = 0;
  tlsPort = 0;
  /** Every transport's ports by config key (PORT, TLS_PORT, HTTP_PORT …), as listened on. */
  ports: Record<string, number> = {};
  private readonly logger: Logger;
  private readonly write: LogSink;
  private readonly slots: Slot[];
  private shuttingDown = false;
  private readonly startedAt = Date.now();
  private readonly queries = new Map<number, Query>();
  private lastQueryId = 0;

  constructor(
    config: Config,
    logger: Logger,
    write: LogSink,
    tls: TlsMaterial | null = null,
    stats = SharedStats.create(config.THREAD_POOL_SIZE),
  ) {
    this.config = config;
    this.tls = tls;
    this.logger = logger;
    this.write = write;
    this.stats = stats;
    const perIp =
      config.MAX_CONNECTIONS_PER_IP > 0 || config.RATE_LIMIT > 0 || config.AUTH_TOKENS.length > 0;
    this.ipTable = perIp ? IpTable.create(config.IP_TABLE_SLOTS) : null;
    this.slots = Array.from({ length: config.THREAD_POOL_SIZE }, () => ({
      worker: null,
      stoppedAccepting: null,
      drained: null,
      lastCrash: 0,
      backoffMs: 0,
      restartTimer: null,
    }));
  }

  /** Resolves once every worker listens; rejects with a one-line reason otherwise. */
  async start(): Promise<void> {
    this.port = this.config.PORT === -1 ? -1 : await probePort(this.config.HOST, this.config.PORT);
    if (this.config.TLS_PORT !== 0)
      this.tlsPort = await probePort(this.config.HOST, this.config.TLS_PORT);
    this.ports = await resolvePorts(
      this.config,
      { PORT: this.port, TLS_PORT: this.tlsPort },
      (port) => probePort(this.config.HOST, port),
    );
    const results = await Promise.allSettled(this.slots.map((_, i) => this.spawn(i)));
    const failure = results.find((r) => r.status === 'rejected');
    if (failure) {
      this.shuttingDown = true;
      await Promise.all(this.slots.map((s) => s.worker?.terminate()));
      throw failure.reason;
    }
  }

  /** Starts worker `i`; resolves once it listens, rejects when it fails before that. */
  private spawn(i: number): Promise<void> {
    const worker = new Worker(WORKER_URL, {
      workerData: this.workerData(i),
      stdout: false,
      stderr: false,
      // A small young generation keeps idle connections cheap: V8 otherwise grows it to tens of
      // MiB per worker under load (measured in docs/PERFORMANCE.md).
      resourceLimits: { maxYoungGenerationSizeMb: this.config.WORKER_YOUNG_GENERATION_MB },
    });
    this.slots[i].worker = worker;
    return new Promise((resolve, reject) => {
      const startup: Startup = { ready: false, crash: null, fail: reject };
      worker.on('message', (msg: FromWorker) => {
        if (msg.type === 'ready') {
          startup.ready = true;
          resolve();
        } else if (msg.type === 'fatal') {
          reject(new TcpoolError(codes.ERR_LISTEN, msg.message));
          void worker.terminate();
        } else {
          this.route(i, msg);
        }
      });
      worker.on('error', (err) => (startup.crash = err));
      worker.on('exit', (code) => this.exited(i, worker, code, startup));
    });
  }

  private workerData(i: number): WorkerData {
    return {
      config: this.config,
      tls: this.tls,
      tlsPort: this.tlsPort,
      startedAt: this.startedAt,
      version: VERSION,
      port: this.port,
      ports: this.ports,
      workerId: i,
      statsBuffer: this.stats.buffer,
      ipTableBuffer: this.ipTable?.buffer ?? null,
    };
  }

  /** Every message of a running worker but its start-up ones. */
  private route(i: number, msg: Exclude<FromWorker, { type: 'ready' | 'fatal' }>): void {
    const slot = this.slots[i];
    switch (msg.type) {
      case 'log':
        this.write(msg.text);
        break;
      case 'stopped-accepting':
        slot.stoppedAccepting?.();
        break;
      case 'drained':
        slot.drained?.();
        break;
      case 'query':
        this.ask(i, msg.id, msg.kind);
        break;
      case 'query-reply':
        this.answer(msg.id, msg.result);
        break;
    }
  }

  /** A worker ended: a failed start, part of the shutdown, or a crash to recover from. */
  private exited(i: number, worker: Worker, code: number, startup: Startup): void {
    const slot = this.slots[i];
    if (slot.worker === worker) slot.worker = null;
    slot.stoppedAccepting?.();
    slot.drained?.();
    if (!startup.ready) {
      const why = startup.crash?.message ?? `exit code ${code}`;
      startup.fail(new TcpoolError(codes.ERR_LISTEN, `Worker ${i} failed to start: ${why}`));
    } else if (!this.shuttingDown) {
      this.replace(i, code, startup.crash);
    }
  }

  /** Puts worker `askerSlot`'s question to every live worker (itself included) and gathers the answers. */
  private ask(askerSlot: number, askerId: number, kind: QueryKind): void {
    const live = this.slots.filter((s) => s.worker !== null);
    const id = ++this.lastQueryId;
    const timer = setTimeout(() => this.finishQuery(id), QUERY_TIMEOUT_MS);
    this.queries.set(id, { askerSlot, askerId, remaining: live.length, results: [], timer });
    for (const slot of live)
      slot.worker!.postMessage({ type: 'query', id, kind } satisfies ToWorker);
  }

  private answer(id: number, result: unknown): void {
    const query = this.queries.get(id);
    if (query === undefined) return;
    query.results.push(result);
    if (--query.remaining === 0) this.finishQuery(id);
  }

  private finishQuery(id: number): void {
    const query = this.queries.get(id);
    if (query === undefined) return;
    clearTimeout(query.timer);
    this.queries.delete(id);
    const msg: ToWorker = { type: 'query-result', id: query.askerId, results: query.results };
    this.slots[query.askerSlot].worker?.postMessage(msg);
  }

  /** A worker died: its clients are gone, the others keep serving; start a new one in its place. */
  private replace(i: number, code: number, crash: Error | null): void {
    const slot = this.slots[i];
    const lost = this.stats.workerLost(i);
    const reason = crash ? `${crash.name}: ${crash.message}` : `exit code ${code}`;
    this.logger.error(
      `Worker ${i} exited unexpectedly (${reason}); ${lost} client(s) dropped; restarting`,
    );
    if (crash?.stack) this.logger.debug(crash.stack);
    // Back off when a worker keeps dying, so a crash loop cannot spin the CPU.
    const now = Date.now();
    slot.backoffMs =
      now - slot.lastCrash < 30_000
        ? Math.min(MAX_BACKOFF_MS, Math.max(MIN_BACKOFF_MS, slot.backoffMs * 2))
        : 0;
    slot.lastCrash = now;
    const restart = (): void => {
      slot.restartTimer = null;
      if (this.shuttingDown) return;
      this.spawn(i).then(
        () => this.logger.info(`Worker ${i} restarted`),
        (err: Error) => {
          this.logger.error(`Worker ${i} could not restart: ${err.message}`);
          slot.backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(MIN_BACKOFF_MS, slot.backoffMs * 2));
          slot.restartTimer = setTimeout(restart, slot.backoffMs);
        },
      );
    };
    slot.restartTimer = setTimeout(restart, slot.backoffMs);
  }

  /**
   * Graceful shutdown: every worker stops accepting at once, answers what it has received, closes
   * idle clients and gives busy ones up to SHUTDOWN_TIMEOUT_MS. Returns the clients active when it began.
   */
  async shutdown(): Promise<number> {
    const active = this.stats.activeClients();
    this.shuttingDown = true;
    const drained: Promise<void>[] = [];
    const stopped: Promise<void>[] = [];
    for (const slot of this.slots) {
      if (slot.restartTimer !== null) clearTimeout(slot.restartTimer);
      const worker = slot.worker;
      if (worker === null) continue;
      drained.push(new Promise((resolve) => (slot.drained = resolve)));
      stopped.push(new Promise((resolve) => (slot.stoppedAccepting = resolve)));
      worker.postMessage({
        type: 'shutdown',
        timeoutMs: this.config.SHUTDOWN_TIMEOUT_MS,
      } satisfies ToWorker);
    }
    void Promise.all(stopped).then(() => this.logger.info('Stopped accepting new connections'));
    // Workers destroy busy sockets at the timeout themselves; this only guards against a stuck worker.
    let guard: NodeJS.Timeout | undefined;
    const stuck = new Promise<void>(
      (resolve) => (guard = setTimeout(resolve, this.config.SHUTDOWN_TIMEOUT_MS + 2000)),
    );
    await Promise.race([Promise.all(drained), stuck]);
    clearTimeout(guard);
    await Promise.all(this.slots.map((s) => s.worker && endWorker(s.worker)));
    return active;
  }
}

/** A drained worker ends its own thread; one that has not within a second is terminated. */
function endWorker(worker: Worker): Promise<unknown> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(worker.terminate()), WORKER_EXIT_GRACE_MS);
    worker.once('exit', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
}
