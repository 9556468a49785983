// The main thread: resolves the port once, starts the worker pool, replaces workers that die,
// grows and shrinks the pool while serving, puts a reload in force in every worker, and runs the
// shutdown in order. It never touches a client socket.
import { createServer, type AddressInfo } from 'node:net';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ClientInfo } from '../commands/context.ts';
import { createRegistry } from '../commands/load.ts';
import type { LoadedConfig } from '../config/load.ts';
import type { Config, ConfigKey } from '../config/schema.ts';
import { loadTls, type TlsMaterial } from '../config/tls.ts';
import { listenError, TcpoolError, codes } from '../errors.ts';
import type { Logger, LogSink } from '../log/logger.ts';
import { LogThrottle } from '../log/throttle.ts';
import { SharedStats, SLOT_FREE, SLOT_RETIRING, SLOT_SERVING } from '../stats/counters.ts';
import { runtime } from '../transport/bun/runtime.ts';
import { resolvePorts } from '../transport/ports.ts';
import { IpTable } from '../stats/ip-table.ts';
import { MetricsLayout, MetricsReader } from '../stats/metrics.ts';
import { VERSION } from '../version.ts';
import { otlpHttpExporter, protocolFromEnv, type SpanExporter } from '../tracing/exporter.ts';
import type { FromWorker, QueryKind, ToWorker, WorkerData } from './messages.ts';
import { Autoscaler, type AutoscalePolicy, clampSize, policyOf } from './autoscale.ts';
import { reloadedConfig } from './reload.ts';
import { monotonicMs } from '../stats/clock.ts';

/** How long a drained worker has to end its own thread before it is terminated. */
const WORKER_EXIT_GRACE_MS = 1000;

// Next to this file in both layouts: src/ (.ts, run directly) and dist/ (.js, built).
const WORKER_URL = new URL(
  `../worker/main${extname(fileURLToPath(import.meta.url))}`,
  import.meta.url,
);

/**
 * Binds the port exclusively once, so that a port held by anyone (even another tcpool) is refused.
 */
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
  /** During shutdown or a retirement: the worker has closed its listener. */
  stoppedAccepting: (() => void) | null;
  /** Resolves when the worker reported that its clients are gone (shutdown, retirement). */
  drained: (() => void) | null;
  /** A shrink retired it: when it exits, the slot is free, not restarted. */
  retiring: boolean;
  /** When its worker was started (monotonicMs()): a load sample older than that is its predecessor's. */
  startedAt: number;
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
  remaining: number;
  results: unknown[];
  timer: NodeJS.Timeout;
  done: (results: unknown[]) => void;
}

/** Where the server stands, as /readyz and `tcpool ctl status` tell it. */
export type Phase = 'starting' | 'serving' | 'draining' | 'stopping';

export interface SupervisorOptions {
  /** Reads the configuration again (file and environment; flags as given): what a reload uses. */
  reloadSource?: () => LoadedConfig;
  /**
   * Applies a reload to what the supervisor thread owns (log level and format, LOG_FILE reopened).
   * Returns a problem to report, or null.
   */
  onReconfigure?: (config: Config) => string | null;
  /** --takeover: join a port another tcpool holds (SO_REUSEPORT) instead of refusing it. */
  takeover?: boolean;
  /** Where each key's value came from (loadConfig's origin): the admin API shows it. */
  origin?: Record<ConfigKey, string>;
}

export interface ReloadResult {
  ok: boolean;
  /** The first line of what went wrong (as start-up would say it); the old configuration stays. */
  error?: string;
  /** Keys now in force with a new value, and keys that changed but need a restart. */
  changed: ConfigKey[];
  notLive: ConfigKey[];
  poolSize: number;
}

/** A worker that does not answer a query in time is left out of the result. */
const QUERY_TIMEOUT_MS = 1000;
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 10_000;

export class Supervisor {
  config: Config;
  readonly stats: SharedStats;
  /** Shared by the workers when a per-IP limit needs it (created by a reload that turns one on). */
  ipTable: IpTable | null;
  tls: TlsMaterial | null;
  port = 0;
  tlsPort = 0;
  /** Every transport's ports by config key (PORT, TLS_PORT, HTTP_PORT …), as listened on. */
  ports: Record<string, number> = {};
  phase: Phase = 'starting';
  /**
   * Where each key's value came from: "default", "env", "flag", "file:line", or "api" (a resize).
   */
  origin: Partial<Record<ConfigKey, string>>;
  /** Slots the shared memory holds: the most workers the pool can grow to. */
  readonly capacity: number;
  /** Per-command figures, laid out once the registry is known (start()). */
  metrics: MetricsReader | null = null;
  readonly startedAt = Date.now();
  private metricsBuffer: SharedArrayBuffer | null = null;
  /** The OTLP/HTTP exporter of the workers' spans, once one sent a batch (TRACING). */
  private spanExporter: Promise<SpanExporter> | null = null;
  private readonly logger: Logger;
  /** The span exporter's warnings (spans a collector rejected), at most one a minute. */
  private readonly spanWarnings: LogThrottle;
  private readonly write: LogSink;
  private readonly options: SupervisorOptions;
  private readonly slots: Slot[];
  private shuttingDown = false;
  private readonly queries = new Map<number, Query>();
  private lastQueryId = 0;
  /** Resizes and reloads run one at a time, in the order asked. */
  private serial: Promise<unknown> = Promise.resolve();
  /** POOL_AUTOSCALE: resizes by the workers' load, through resize(). */
  readonly autoscaler = new Autoscaler({
    load: () => this.poolLoad(),
    resize: (size, reason) => this.autoscaleTo(size, reason),
    failed: (err) => this.logger.error(`Autoscale: ${err.message}`),
  });

  constructor(
    config: Config,
    logger: Logger,
    write: LogSink,
    tls: TlsMaterial | null = null,
    stats?: SharedStats,
    options: SupervisorOptions = {},
  ) {
    this.tls = tls;
    this.logger = logger;
    this.spanWarnings = new LogThrottle(logger, 60_000);
    this.write = write;
    this.options = options;
    this.origin = { ...options.origin };
    // With POOL_AUTOSCALE the pool starts within its min..max, whatever THREAD_POOL_SIZE says.
    const policy = autoscalePolicy(config);
    const size =
      policy === null ? config.THREAD_POOL_SIZE : clampSize(policy, config.THREAD_POOL_SIZE);
    if (size !== config.THREAD_POOL_SIZE) this.origin.THREAD_POOL_SIZE = 'autoscale';
    this.config = { ...config, THREAD_POOL_SIZE: size };
    this.capacity = Math.max(config.THREAD_POOL_MAX, size);
    this.stats = stats ?? SharedStats.create(this.capacity, 0);
    if (this.stats.workers < this.capacity)
      throw new RangeError(`SharedStats has ${this.stats.workers} slots, ${this.capacity} needed`);
    this.ipTable = needsIpTable(config) ? IpTable.create(config.IP_TABLE_SLOTS) : null;
    this.slots = Array.from({ length: this.capacity }, () => ({
      worker: null,
      stoppedAccepting: null,
      drained: null,
      retiring: false,
      startedAt: 0,
      lastCrash: 0,
      backoffMs: 0,
      restartTimer: null,
    }));
  }

  /**
   * Lays out the per-command figures (they need the registry's names). `tcpool serve` runs it
   * before the admin endpoint listens, so /metrics and the API answer while the pool starts;
   * start() runs it when nobody has.
   */
  async prepare(): Promise<void> {
    if (this.metrics !== null) return;
    const registry = await createRegistry(this.config.COMMANDS_MODULE);
    const layout = new MetricsLayout(
      registry.list().map((s) => s.name),
      this.capacity,
    );
    this.metricsBuffer = layout.createBuffer();
    this.metrics = new MetricsReader(this.metricsBuffer, layout);
  }

  /** Resolves once every worker listens; rejects with a one-line reason otherwise. */
  async start(): Promise<void> {
    const { config } = this;
    await this.prepare();
    // --takeover joins a port another tcpool holds: the exclusive probe would refuse it.
    const probe = (port: number): Promise<number> =>
      this.options.takeover ? Promise.resolve(port) : probePort(config.HOST, port);
    this.port = config.PORT === -1 ? -1 : await probe(config.PORT);
    if (config.TLS_PORT !== 0) this.tlsPort = await probe(config.TLS_PORT);
    this.ports = await resolvePorts(config, { PORT: this.port, TLS_PORT: this.tlsPort }, probe);
    const first = Array.from({ length: config.THREAD_POOL_SIZE }, (_, i) => i);
    for (const i of first) this.stats.setSlotState(i, SLOT_SERVING);
    const results = await Promise.allSettled(first.map((i) => this.spawn(i)));
    const failure = results.find((r) => r.status === 'rejected');
    if (failure) {
      this.shuttingDown = true;
      await Promise.all(this.slots.map((s) => s.worker?.terminate()));
      throw failure.reason;
    }
    this.phase = 'serving';
    this.configureAutoscale();
  }

  /** Starts, changes or stops POOL_AUTOSCALE as the configuration says, and says so. */
  private configureAutoscale(): void {
    const was = this.autoscaler.enabled;
    const policy = autoscalePolicy(this.config);
    if (policy === null && this.config.POOL_AUTOSCALE !== null)
      this.logger.warn(
        'POOL_AUTOSCALE is off on Bun: Bun reports no event-loop utilisation (it reads 0), so the pool would only ever shrink',
      );
    this.autoscaler.configure(policy);
    if (policy !== null) this.logger.info(`Pool autoscale: ${describePolicy(policy)}`);
    else if (was !== null) this.logger.info('Pool autoscale: off');
  }

  /**
   * Workers serving, and their mean event-loop utilisation over each one's last sample; null
   * unless serving (a drained pool is not resized by load).
   */
  private poolLoad(): { size: number; elu: number | null } | null {
    if (this.phase !== 'serving') return null;
    let sum = 0;
    let sampled = 0;
    let size = 0;
    this.slots.forEach((slot, i) => {
      if (this.stats.slotState(i) !== SLOT_SERVING) return;
      size++;
      if (slot.worker === null) return;
      const { elu, sampledAt } = this.metrics!.load(i);
      if (sampledAt < slot.startedAt) return; // not sampled since it started
      sum += elu;
      sampled++;
    });
    return { size, elu: sampled === 0 ? null : sum / sampled };
  }

  /** The autoscaler's resize: logged with its reason and counted. */
  private async autoscaleTo(size: number, reason: string): Promise<void> {
    const from = this.stats.poolSize();
    this.logger.info(
      `Autoscale: ${size > from ? 'growing' : 'shrinking'} the pool ${from} -> ${size} workers (${reason})`,
    );
    const now = await this.resize(size, 'autoscale');
    if (now !== from) this.stats.count(0, now > from ? 'autoscale_grows' : 'autoscale_shrinks');
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
    const slot = this.slots[i];
    slot.worker = worker;
    slot.retiring = false;
    slot.startedAt = monotonicMs();
    return new Promise((resolve, reject) => {
      const startup: Startup = { ready: false, crash: null, fail: reject };
      worker.on('message', (msg: FromWorker) => {
        if (msg.type === 'ready') {
          startup.ready = true;
          // A drained server accepts no one: a worker that starts now (a restart, a grown pool)
          // serves no new clients either.
          if (this.phase === 'draining')
            worker.postMessage({ type: 'stop-accepting' } satisfies ToWorker);
          resolve();
        } else if (msg.type === 'fatal') {
          reject(new TcpoolError(codes.ERR_LISTEN, msg.message));
          void worker.terminate();
        } else if (msg.type === 'spans') {
          this.exportSpans(worker, msg);
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
      capacity: this.capacity,
      statsBuffer: this.stats.buffer,
      metricsBuffer: this.metricsBuffer!,
      ipTableBuffer: this.ipTable?.buffer ?? null,
    };
  }

  /**
   * Exports a worker's batch of spans (TRACING) with the one OTLP/HTTP exporter of the process,
   * loaded at the first batch, and tells the worker the outcome.
   */
  private exportSpans(worker: Worker, msg: Extract<FromWorker, { type: 'spans' }>): void {
    let answered = false;
    const done = (ok: boolean, error?: Error): void => {
      if (answered) return;
      answered = true;
      // A sent body's memory goes back to the worker for its next batch. A refused one's is
      // not: a collector may answer before it has read the whole body, still being written.
      const body = ok ? msg.body : undefined;
      // A worker that has ended meanwhile needs no answer.
      try {
        worker.postMessage(
          { type: 'spans-done', id: msg.id, ok, error: error?.message, body } satisfies ToWorker,
          body === undefined ? [] : [body],
        );
      } catch {}
    };
    // Each worker has at most 2 exports out (src/tracing/span-queue.ts).
    // The workers wrote the bodies in the protocol the environment names (and warned if bad).
    this.spanExporter ??= otlpHttpExporter(2 * this.capacity + 2, protocolFromEnv(), (message) =>
      this.spanWarnings.warn('Tracing: exporter', message),
    );
    this.spanExporter
      .then((exporter) => exporter.send(Buffer.from(msg.body, 0, msg.length), msg.spans, done))
      .catch((err: Error) => done(false, err));
  }

  /** Every message of a running worker but its start-up ones. */
  private route(i: number, msg: Exclude<FromWorker, { type: 'ready' | 'fatal' | 'spans' }>): void {
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
      case 'query': {
        const asker = slot.worker;
        void this.gather(msg.kind).then((results) =>
          asker?.postMessage({ type: 'query-result', id: msg.id, results } satisfies ToWorker),
        );
        break;
      }
      case 'query-reply':
      case 'reconfigured':
      case 'killed-client':
        this.answer(msg.id, msg.type === 'query-reply' ? msg.result : msg);
        break;
    }
  }

  /**
   * A worker ended: a failed start, a retirement, part of the shutdown, or a crash to recover from.
   */
  private exited(i: number, worker: Worker, code: number, startup: Startup): void {
    const slot = this.slots[i];
    if (slot.worker !== worker) return;
    slot.worker = null;
    slot.stoppedAccepting?.();
    slot.drained?.();
    if (!startup.ready) {
      this.stats.setSlotState(i, SLOT_FREE);
      const why = startup.crash?.message ?? `exit code ${code}`;
      startup.fail(new TcpoolError(codes.ERR_LISTEN, `Worker ${i} failed to start: ${why}`));
    } else if (slot.retiring) {
      slot.retiring = false;
      this.stats.setSlotState(i, SLOT_FREE);
      this.logger.info(`Worker ${i} retired`);
    } else if (!this.shuttingDown) {
      this.replace(i, code, startup.crash);
    }
  }

  /** Puts a question to every live worker and gathers the answers (unanswered ones left out). */
  private gather(kind: QueryKind): Promise<unknown[]> {
    return this.broadcast((id) => ({ type: 'query', id, kind }));
  }

  /** Sends each live worker a message with a fresh id; resolves with their answers. */
  private broadcast(message: (id: number) => ToWorker): Promise<unknown[]> {
    const live = this.slots.filter((s) => s.worker !== null);
    const id = ++this.lastQueryId;
    return new Promise((done) => {
      const timer = setTimeout(() => this.finishQuery(id), QUERY_TIMEOUT_MS);
      this.queries.set(id, { remaining: live.length, results: [], timer, done });
      for (const slot of live) slot.worker!.postMessage(message(id));
      if (live.length === 0) this.finishQuery(id);
    });
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
    query.done(query.results);
  }

  /** Every worker's clients, by id. */
  async clients(): Promise<ClientInfo[]> {
    const results = (await this.gather('clients')) as ClientInfo[][];
    return results.flat().sort((a, b) => a.id - b.id);
  }

  /** Closes client `id`, wherever it is served; false when no worker has it. */
  async killClient(id: number): Promise<boolean> {
    const answers = await this.broadcast((qid) => ({ type: 'kill-client', id: qid, clientId: id }));
    return answers.some((a) => (a as { found: boolean }).found);
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
    const now = monotonicMs();
    slot.backoffMs =
      now - slot.lastCrash < 30_000
        ? Math.min(MAX_BACKOFF_MS, Math.max(MIN_BACKOFF_MS, slot.backoffMs * 2))
        : 0;
    slot.lastCrash = now;
    const restart = (): void => {
      slot.restartTimer = null;
      if (this.shuttingDown || this.stats.slotState(i) !== SLOT_SERVING) return;
      this.spawn(i).then(
        () => {
          this.logger.info(`Worker ${i} restarted`);
        },
        (err: Error) => {
          this.logger.error(`Worker ${i} could not restart: ${err.message}`);
          slot.backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(MIN_BACKOFF_MS, slot.backoffMs * 2));
          slot.restartTimer = setTimeout(restart, slot.backoffMs);
        },
      );
    };
    slot.restartTimer = setTimeout(restart, slot.backoffMs);
  }

  /** Runs resizes and reloads one at a time. */
  private serially<T>(step: () => Promise<T>): Promise<T> {
    const next = this.serial.then(step, step);
    this.serial = next.catch(() => {});
    return next;
  }

  /**
   * Grows or shrinks the pool to `size` workers. New workers join the port's SO_REUSEPORT group;
   * retiring ones stop accepting and serve their clients for up to DRAIN_TIMEOUT_MS. Resolves
   * once the new workers listen (retiring ones drain on in the background).
   */
  resize(size: number, by = 'api'): Promise<number> {
    return this.serially(async () => {
      const policy = this.autoscaler.enabled;
      if (by !== 'autoscale' && policy !== null && clampSize(policy, size) !== size)
        throw new TcpoolError(
          codes.ERR_CONFIG_VALUE,
          `Invalid pool size ${size}: POOL_AUTOSCALE keeps the pool within ${policy.min}..${policy.max} (change POOL_AUTOSCALE, or set it off, for another size)`,
        );
      const from = this.stats.poolSize();
      const now = await this.resizeNow(size);
      this.origin.THREAD_POOL_SIZE = by;
      if (by !== 'autoscale' && now !== from) this.autoscaler.changedByHand();
      return now;
    });
  }

  private async resizeNow(size: number): Promise<number> {
    if (!Number.isInteger(size) || size < 1 || size > this.capacity)
      throw new TcpoolError(
        codes.ERR_CONFIG_VALUE,
        `Invalid pool size ${size}: must be an integer from 1 to ${this.capacity} (THREAD_POOL_MAX)`,
      );
    if (this.shuttingDown) return this.stats.poolSize();
    const serving = this.slots
      .map((_, i) => i)
      .filter((i) => this.stats.slotState(i) === SLOT_SERVING);
    const from = serving.length;
    if (size > from) {
      const free = this.slots
        .map((_, i) => i)
        .filter((i) => this.stats.slotState(i) === SLOT_FREE && this.slots[i].worker === null)
        .slice(0, size - from);
      for (const i of free) this.stats.setSlotState(i, SLOT_SERVING);
      const results = await Promise.allSettled(free.map((i) => this.spawn(i)));
      results.forEach((r, k) => {
        if (r.status === 'rejected') {
          this.stats.setSlotState(free[k], SLOT_FREE);
          this.logger.error(`Worker ${free[k]} could not start: ${(r.reason as Error).message}`);
        }
      });
    } else if (size < from) {
      for (const i of serving.slice(size).reverse()) this.retire(i);
    }
    const now = this.stats.poolSize();
    if (now === from) return now;
    this.logger.info(`Thread pool resized: ${from} -> ${now} workers`);
    // Every worker learns the new size (INFO shows it; each keeps its descriptor reserve for it).
    this.config = { ...this.config, THREAD_POOL_SIZE: now };
    await this.broadcast((id) => ({
      type: 'reconfigure',
      id,
      config: this.config,
      tls: this.tls,
      ipTableBuffer: this.ipTable?.buffer ?? null,
    }));
    return now;
  }

  /**
   * A shrink: the worker stops accepting and serves its clients until they leave or
   * DRAIN_TIMEOUT_MS.
   */
  private retire(i: number): void {
    const slot = this.slots[i];
    if (slot.restartTimer !== null) clearTimeout(slot.restartTimer);
    slot.restartTimer = null;
    this.stats.setSlotState(i, SLOT_RETIRING);
    if (slot.worker === null) {
      this.stats.setSlotState(i, SLOT_FREE);
      return;
    }
    slot.retiring = true;
    slot.worker.postMessage({
      type: 'retire',
      drainMs: this.config.DRAIN_TIMEOUT_MS,
      shutdownMs: this.config.SHUTDOWN_TIMEOUT_MS,
    } satisfies ToWorker);
  }

  /**
   * Re-reads the configuration and puts every key that can change live in force in every worker.
   * An invalid configuration changes nothing: the result says why, as start-up would.
   */
  reload(): Promise<ReloadResult> {
    return this.serially(() => this.reloadNow());
  }

  private async reloadNow(): Promise<ReloadResult> {
    const fail = (err: unknown): ReloadResult => {
      if (!(err instanceof TcpoolError)) throw err;
      this.stats.count(0, 'reload_failures');
      this.logger.error(`Reload failed, configuration unchanged: ${err.message}`);
      return {
        ok: false,
        error: err.message,
        changed: [],
        notLive: [],
        poolSize: this.stats.poolSize(),
      };
    };
    if (this.options.reloadSource === undefined)
      return fail(
        new TcpoolError(
          codes.ERR_CONFIG_FILE,
          'This server was started without a configuration to reload',
        ),
      );
    let next: Config;
    let tls: TlsMaterial | null;
    let changed: ConfigKey[];
    let notLive: ConfigKey[];
    try {
      const loaded = this.options.reloadSource();
      for (const w of loaded.warnings) this.logger.warn(w);
      ({ config: next, changed, notLive } = reloadedConfig(this.config, loaded.config));
      tls = loadTls(next);
      for (const k of changed) this.origin[k] = loaded.origin[k];
    } catch (err) {
      return fail(err);
    }
    if (this.ipTable === null && needsIpTable(next))
      this.ipTable = IpTable.create(next.IP_TABLE_SLOTS);
    const size = next.THREAD_POOL_SIZE;
    this.config = { ...next, THREAD_POOL_SIZE: this.stats.poolSize() };
    this.tls = tls;
    const problem = this.options.onReconfigure?.(this.config) ?? null;
    if (problem !== null) this.logger.error(problem);
    await this.broadcast((id) => ({
      type: 'reconfigure',
      id,
      config: this.config,
      tls,
      ipTableBuffer: this.ipTable?.buffer ?? null,
    }));
    const wasScaling = this.autoscaler.enabled !== null;
    if (changed.some((k) => k.startsWith('POOL_AUTOSCALE'))) this.configureAutoscale();
    // THREAD_POOL_SIZE applies when it changed, or when POOL_AUTOSCALE was turned off; with
    // POOL_AUTOSCALE on, the size (new or not) is brought within its min..max.
    const policy = this.autoscaler.enabled;
    const from = this.stats.poolSize();
    const sized = changed.includes('THREAD_POOL_SIZE') || (wasScaling && policy === null);
    let target = sized ? Math.min(size, this.capacity) : from;
    if (policy !== null) target = clampSize(policy, target);
    if (target !== from) {
      try {
        await this.resizeNow(target);
      } catch (err) {
        return fail(err);
      }
      if (this.stats.poolSize() !== from) this.autoscaler.changedByHand();
    }
    this.stats.count(0, 'reloads');
    const live = changed.length === 0 ? 'nothing changed' : `changed: ${changed.join(', ')}`;
    const fixed =
      notLive.length === 0 ? '' : `; need a restart, left as they are: ${notLive.join(', ')}`;
    this.logger.info(`Configuration reloaded (${live}${fixed})`);
    return { ok: true, changed, notLive, poolSize: this.stats.poolSize() };
  }

  /**
   * Stops accepting in every worker; clients are served on, /readyz says 503, until SIGTERM. The
   * listeners close DRAIN_DELAY_MS after /readyz turned 503: a load balancer that checks it has
   * stopped sending new clients by then, so none is caught in a closing listener's queue (which
   * the kernel resets).
   */
  async drain(): Promise<void> {
    if (this.phase !== 'serving') return;
    this.phase = 'draining';
    await delay(this.config.DRAIN_DELAY_MS);
    if (this.shuttingDown) return;
    const stopped = this.slots
      .filter((s) => s.worker !== null && !s.retiring)
      .map((slot) => {
        const done = new Promise<void>((resolve) => (slot.stoppedAccepting = resolve));
        slot.worker!.postMessage({ type: 'stop-accepting' } satisfies ToWorker);
        return done;
      });
    await Promise.all(stopped);
    this.logger.info(
      'Draining: stopped accepting new connections; clients are served until SIGTERM',
    );
  }

  /**
   * Graceful shutdown: every worker stops accepting at once, answers what it has received, closes
   * idle clients and gives busy ones up to SHUTDOWN_TIMEOUT_MS. Returns the clients active when it
   * began.
   */
  async shutdown(): Promise<number> {
    // Not yet drained: /readyz says 503 for DRAIN_DELAY_MS while clients are still accepted.
    const drained = this.phase === 'draining';
    this.phase = 'stopping';
    this.autoscaler.stop();
    if (!drained && this.config.DRAIN_DELAY_MS > 0) {
      this.logger.info(
        `Readiness off; stopping in DRAIN_DELAY_MS (${this.config.DRAIN_DELAY_MS} ms)`,
      );
      await delay(this.config.DRAIN_DELAY_MS);
    }
    const active = this.stats.activeClients();
    this.shuttingDown = true;
    await this.serial; // a resize or reload under way finishes first
    const draining: Promise<void>[] = [];
    const stopped: Promise<void>[] = [];
    for (const slot of this.slots) {
      if (slot.restartTimer !== null) clearTimeout(slot.restartTimer);
      const worker = slot.worker;
      if (worker === null) continue;
      draining.push(new Promise((resolve) => (slot.drained = resolve)));
      if (!slot.retiring) stopped.push(new Promise((resolve) => (slot.stoppedAccepting = resolve)));
      worker.postMessage({
        type: 'shutdown',
        timeoutMs: this.config.SHUTDOWN_TIMEOUT_MS,
      } satisfies ToWorker);
    }
    void Promise.all(stopped).then(() => this.logger.info('Stopped accepting new connections'));
    // Workers destroy busy sockets at the timeout themselves; this only guards against a stuck
    // worker.
    let guard: NodeJS.Timeout | undefined;
    const stuck = new Promise<void>(
      (resolve) => (guard = setTimeout(resolve, this.config.SHUTDOWN_TIMEOUT_MS + 2000)),
    );
    await Promise.race([Promise.all(draining), stuck]);
    clearTimeout(guard);
    await Promise.all(this.slots.map((s) => s.worker && endWorker(s.worker)));
    // The workers sent their last spans before they drained; the exporter sends them on.
    // Bounded: a collector that does not answer must not hold the exit.
    const exporterDone = this.spanExporter?.then((exporter) => exporter.shutdown()).catch(() => {});
    if (exporterDone !== undefined) await Promise.race([exporterDone, delay(1000)]);
    return active;
  }
}

/**
 * POOL_AUTOSCALE's policy, where it can work: Bun's performance.eventLoopUtilization() reads 0
 * whatever the load (docs/PERFORMANCE.md), so on Bun it stays off.
 */
function autoscalePolicy(config: Config): AutoscalePolicy | null {
  return runtime === 'bun' ? null : policyOf(config);
}

/** POOL_AUTOSCALE's policy in a line, for the log. */
function describePolicy(p: AutoscalePolicy): string {
  const pct = (x: number): string => `${Math.round(x * 100)}%`;
  return (
    `${p.min}..${p.max} workers: one more above ${pct(p.high)} mean event-loop utilisation, one ` +
    `fewer below ${pct(p.low)}, held for ${p.windowMs} ms; ${p.cooldownMs} ms between changes`
  );
}

const delay = (ms: number): Promise<void> =>
  new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : resolve()));

/** The per-IP table is only made when a per-IP limit needs it. */
function needsIpTable(config: Config): boolean {
  return (
    config.MAX_CONNECTIONS_PER_IP > 0 || config.RATE_LIMIT > 0 || config.AUTH_TOKENS.length > 0
  );
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
