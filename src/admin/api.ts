// The JSON API under /api/v1/: what STATS FULL and INFO know, the clients of every worker, the
// effective configuration, and the operator's controls (reload, pool size, drain, kill a client).
// `tcpool ctl` and the dashboard use nothing else.
import type { ClientInfo } from '../commands/context.ts';
import { type ConfigKey, configKeys } from '../config/schema.ts';
import { codes } from '../errors.ts';
import { LATENCY_BUCKETS, quantile } from '../stats/metrics.ts';
import { SECRET_KEYS } from '../supervisor/reload.ts';
import type { Supervisor } from '../supervisor/supervisor.ts';
import { VERSION } from '../version.ts';
import { HttpError } from './http-error.ts';
import { monotonicMs } from '../stats/clock.ts';

const PAGE_DEFAULT = 100;
const PAGE_MAX = 1000;

type Params = URLSearchParams;

export class AdminApi {
  private readonly supervisor: Supervisor;
  /** The previous event frame's totals, for rates. */
  private last: {
    at: number;
    perWorker: { commands: number; errors: number; latency: number[] }[];
  } | null = null;

  constructor(supervisor: Supervisor) {
    this.supervisor = supervisor;
  }

  async route(method: string, path: string, params: Params, body: unknown): Promise<unknown> {
    const m = /^\/api\/v1\/clients\/(\d+)\/kill$/.exec(path);
    if (m !== null && method === 'POST') return this.kill(Number(m[1]));
    const key = `${method} ${path}`;
    switch (key) {
      case 'GET /api/v1/stats':
        return this.stats();
      case 'GET /api/v1/clients':
        return this.clients(params);
      case 'GET /api/v1/config':
        return this.config();
      case 'POST /api/v1/reload':
        return this.reload();
      case 'GET /api/v1/pool':
        return this.pool();
      case 'PUT /api/v1/pool':
        return this.resize(body);
      case 'POST /api/v1/drain':
        await this.supervisor.drain();
        return { status: this.supervisor.phase };
      default:
        throw new HttpError(404, codes.ERR_ADMIN_NOT_FOUND, `Not found: ${key}`);
    }
  }

  /** Everything STATS FULL and INFO know, and the per-command figures. */
  stats(): unknown {
    const sup = this.supervisor;
    const s = sup.stats.snapshot();
    const m = sup.metrics!.snapshot();
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    return {
      version: VERSION,
      pid: process.pid,
      phase: sup.phase,
      uptimeSeconds: Math.floor((Date.now() - sup.startedAt) / 1000),
      port: sup.port,
      tlsPort: sup.tlsPort,
      poolSize: s.poolSize,
      poolMax: sup.capacity,
      active: s.active,
      connections: s.connections,
      commands: s.commands,
      rejected: s.rejected,
      restarts: s.restarts,
      counters: s.totals,
      bytesIn: m.bytesIn,
      bytesOut: m.bytesOut,
      errors: m.errors,
      memory: { rss: mem.rss, heapUsed: mem.heapUsed, external: mem.external },
      cpuSeconds: { user: cpu.user / 1e6, system: cpu.system / 1e6 },
      workers: s.workers.map((w, i) => ({
        id: i,
        state: w.state === 1 ? 'serving' : w.state === 2 ? 'retiring' : 'free',
        active: w.active,
        connections: w.connections,
        commands: w.commands,
        rejected: w.rejected,
        eventLoopUtilization: m.workers[i].elu,
        eventLoopLagSeconds: m.workers[i].lagP99,
        heapUsed: m.workers[i].heapUsed,
      })),
      commandStats: m.commands
        .filter((c) => c.line + c.resp > 0)
        .map((c) => ({
          command: c.name,
          calls: c.line + c.resp,
          line: c.line,
          resp: c.resp,
          meanSeconds: c.count === 0 ? 0 : c.sumSeconds / c.count,
          p99Seconds: quantile(c.buckets, 0.99),
        })),
    };
  }

  /** Every worker's clients; filters: worker, addr (substring), name, protocol, cmd; paged. */
  async clients(params: Params): Promise<unknown> {
    const offset = intParam(params, 'offset', 0, Number.MAX_SAFE_INTEGER, 0);
    const limit = intParam(params, 'limit', 1, PAGE_MAX, PAGE_DEFAULT);
    const worker = params.get('worker');
    const addr = params.get('addr');
    const name = params.get('name');
    const protocol = params.get('protocol');
    const cmd = params.get('cmd');
    const all = (await this.supervisor.clients()).filter(
      (c: ClientInfo) =>
        (worker === null || String(c.worker) === worker) &&
        (addr === null || c.addr.includes(addr)) &&
        (name === null || c.name === name) &&
        (protocol === null || c.protocol === protocol) &&
        (cmd === null || c.cmd === cmd.toLowerCase()),
    );
    return { total: all.length, offset, limit, clients: all.slice(offset, offset + limit) };
  }

  private async kill(id: number): Promise<unknown> {
    if (!(await this.supervisor.killClient(id)))
      throw new HttpError(404, codes.ERR_ADMIN_NOT_FOUND, `No client with id ${id}`);
    return { killed: id };
  }

  /** The effective value and source of every key; secrets redacted. */
  config(): unknown {
    const { config, origin } = this.supervisor;
    const out: Record<string, { value: unknown; source: string }> = {};
    for (const key of configKeys) {
      out[key] = { value: shown(key, config[key]), source: origin[key] ?? 'default' };
    }
    return out;
  }

  private async reload(): Promise<unknown> {
    const result = await this.supervisor.reload();
    if (!result.ok)
      throw new HttpError(
        422,
        codes.ERR_RELOAD_FAILED,
        `Reload failed, configuration unchanged: ${result.error}`,
      );
    return result;
  }

  private pool(): unknown {
    const s = this.supervisor.stats.snapshot();
    const policy = this.supervisor.autoscaler.enabled;
    return {
      size: s.poolSize,
      max: this.supervisor.capacity,
      retiring: s.workers.filter((w) => w.state === 2).length,
      // POOL_AUTOSCALE: its policy and what it has done; null when it is off.
      autoscale:
        policy === null
          ? null
          : {
              min: policy.min,
              max: policy.max,
              highPercent: Math.round(policy.high * 100),
              lowPercent: Math.round(policy.low * 100),
              windowMs: policy.windowMs,
              cooldownMs: policy.cooldownMs,
              grows: s.totals.autoscale_grows,
              shrinks: s.totals.autoscale_shrinks,
            },
    };
  }

  private async resize(body: unknown): Promise<unknown> {
    const size = (body as { size?: unknown } | null)?.size;
    if (typeof size !== 'number')
      throw new HttpError(
        400,
        codes.ERR_BAD_ARGUMENT,
        'PUT /api/v1/pool needs a JSON body {"size": N}',
      );
    await this.supervisor.resize(size);
    return this.pool();
  }

  /** One frame of the dashboard's live stream: rates over the last interval, per worker too. */
  async frame(): Promise<unknown> {
    const sup = this.supervisor;
    const s = sup.stats.snapshot();
    const m = sup.metrics!.snapshot();
    const now = Date.now();
    const tick = monotonicMs(); // the rates' interval: a wall-clock step must not skew it
    const last = this.last;
    const seconds = last === null ? 0 : (tick - last.at) / 1000;
    const workers = s.workers.map((w, i) => {
      const mw = m.workers[i];
      const prev = last?.perWorker[i];
      const latency = mw.latency.map((n, b) => n - (prev?.latency[b] ?? n));
      return {
        id: i,
        state: w.state === 1 ? 'serving' : w.state === 2 ? 'retiring' : 'free',
        active: w.active,
        rps: seconds > 0 && prev ? (mw.commands - prev.commands) / seconds : 0,
        errorsPerSecond: seconds > 0 && prev ? (mw.errors - prev.errors) / seconds : 0,
        p50: quantile(latency, 0.5),
        p99: quantile(latency, 0.99),
        lag: mw.lagP99,
        elu: mw.elu,
        heapUsed: mw.heapUsed,
      };
    });
    this.last = {
      at: tick,
      perWorker: m.workers.map((w) => ({
        commands: w.commands,
        errors: w.errors,
        latency: w.latency,
      })),
    };
    const clients = await sup.clients();
    return {
      time: now,
      version: VERSION,
      pid: process.pid,
      uptimeSeconds: Math.floor((now - sup.startedAt) / 1000),
      phase: sup.phase,
      poolSize: s.poolSize,
      poolMax: sup.capacity,
      active: s.active,
      rps: workers.reduce((a, w) => a + w.rps, 0),
      rss: process.memoryUsage().rss,
      workers,
      buckets: LATENCY_BUCKETS,
      slowest: m.commands
        .filter((c) => c.count > 0)
        .map((c) => ({
          command: c.name,
          calls: c.count,
          meanSeconds: c.sumSeconds / c.count,
          p99Seconds: quantile(c.buckets, 0.99),
        }))
        .sort((a, b) => b.meanSeconds - a.meanSeconds)
        .slice(0, 8),
      clientsTotal: clients.length,
      clients: clients.slice(0, 50),
    };
  }
}

function shown(key: ConfigKey, value: unknown): unknown {
  if (!SECRET_KEYS.has(key)) return value;
  const n = (value as string[]).length;
  return n === 0 ? [] : `(${n} hash${n === 1 ? '' : 'es'}, redacted)`;
}

function intParam(params: Params, name: string, min: number, max: number, dflt: number): number {
  const raw = params.get(name);
  if (raw === null) return dflt;
  const n = Number(raw);
  if (!/^[0-9]+$/.test(raw) || n < min || n > max)
    throw new HttpError(
      400,
      codes.ERR_BAD_ARGUMENT,
      `Invalid ${name} "${raw}": must be an integer from ${min} to ${max}`,
    );
  return n;
}
