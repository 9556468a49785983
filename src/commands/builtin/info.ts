import { createHash } from 'node:crypto';
import { arch, release, type as osType } from 'node:os';
import { Verbatim } from '../../protocol/reply.ts';
import { EVENT_COUNTERS } from '../../stats/counters.ts';
import type { CommandContext } from '../context.ts';
import { defineCommand } from '../registry.ts';
import { REDIS_COMPAT_VERSION } from './hello.ts';

type Section = (ctx: CommandContext) => string[];

/** Redis's bytesToHuman(): 1023B, 1.00K, 12.34M … */
export function bytesToHuman(n: number): string {
  if (n < 1024) return `${n}B`;
  const units = ['K', 'M', 'G', 'T', 'P'];
  let i = 0;
  let v = n / 1024;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(2)}${units[i]}`;
}

/** A 40-hex-digit id that every worker of this server derives alike (Redis's run_id, replid). */
function serverId(ctx: CommandContext, what: string): string {
  return createHash('sha1').update(`${what}:${process.pid}:${ctx.server.startedAt}`).digest('hex');
}

/**
 * Redis-style sections with tcpool's real figures. Clients read some of them: Valkey GLIDE wants
 * `role:master` from Replication before it sends anything, `redis-cli --stat` reads used_memory,
 * blocked_clients and the Keyspace (empty: tcpool keeps no keys).
 */
const sections: Record<string, Section> = {
  server: (ctx) => {
    const uptime = Math.floor((Date.now() - ctx.server.startedAt) / 1000);
    return [
      `redis_version:${REDIS_COMPAT_VERSION}`,
      `tcpool_version:${ctx.server.version}`,
      'redis_mode:standalone',
      `run_id:${serverId(ctx, 'run')}`,
      `os:${osType()} ${release()} ${arch()}`,
      'arch_bits:64',
      `node_version:${process.versions.node}`,
      `process_id:${process.pid}`,
      `tcp_port:${ctx.server.port}`,
      `uptime_in_seconds:${uptime}`,
      `uptime_in_days:${Math.floor(uptime / 86400)}`,
      `thread_pool_size:${ctx.server.config.THREAD_POOL_SIZE}`,
      `worker_id:${ctx.workerId}`,
    ];
  },
  clients: (ctx) => [
    `connected_clients:${ctx.stats.activeClients()}`,
    `maxclients:${ctx.server.config.MAX_CONNECTIONS}`,
    'blocked_clients:0',
  ],
  memory: () => {
    // The process's figures (every worker shares it), then this worker's own V8 heap.
    const m = process.memoryUsage();
    const peak = Math.max(m.rss, process.resourceUsage().maxRSS * 1024);
    return [
      `used_memory:${m.rss}`,
      `used_memory_human:${bytesToHuman(m.rss)}`,
      `used_memory_rss:${m.rss}`,
      `used_memory_rss_human:${bytesToHuman(m.rss)}`,
      `used_memory_peak:${peak}`,
      `used_memory_peak_human:${bytesToHuman(peak)}`,
      'maxmemory:0',
      'maxmemory_human:0B',
      'maxmemory_policy:noeviction',
      `worker_heap_used:${m.heapUsed}`,
      `worker_heap_total:${m.heapTotal}`,
    ];
  },
  persistence: () => ['loading:0'],
  stats: (ctx) => {
    const s = ctx.stats.snapshot();
    return [
      `total_connections_received:${s.connections}`,
      `total_commands_processed:${s.commands}`,
      `rejected_connections:${s.rejected}`,
      `worker_restarts:${s.restarts}`,
      ...EVENT_COUNTERS.map((c) => `${c}:${s.totals[c]}`),
      ...s.workers.map(
        (w, i) =>
          `worker${i}:active=${w.active},connections=${w.connections},commands=${w.commands},rejected=${w.rejected}`,
      ),
    ];
  },
  replication: (ctx) => [
    'role:master',
    'connected_slaves:0',
    'master_failover_state:no-failover',
    `master_replid:${serverId(ctx, 'replid')}`,
    `master_replid2:${'0'.repeat(40)}`,
    'master_repl_offset:0',
    'second_repl_offset:-1',
    'repl_backlog_active:0',
  ],
  cpu: () => {
    const { system, user } = process.cpuUsage();
    return [
      `used_cpu_sys:${(system / 1e6).toFixed(6)}`,
      `used_cpu_user:${(user / 1e6).toFixed(6)}`,
    ];
  },
  cluster: () => ['cluster_enabled:0'],
  keyspace: () => [],
};

const ALL = Object.keys(sections);
const TITLES: Record<string, string> = { cpu: 'CPU' };

/**
 * Redis's layout: "# Title\r\n" and a "key:value\r\n" line each, sections apart by a blank line.
 */
export function infoText(ctx: CommandContext, wanted: string[]): string {
  let names =
    wanted.length === 0
      ? ALL
      : wanted.flatMap((w) => (['all', 'default', 'everything'].includes(w) ? ALL : [w]));
  names = ALL.filter((n) => names.includes(n));
  return names
    .map((n) => {
      const title = TITLES[n] ?? `${n[0].toUpperCase()}${n.slice(1)}`;
      return `# ${title}\r\n${sections[n](ctx)
        .map((l) => `${l}\r\n`)
        .join('')}`;
    })
    .join('\r\n');
}

export default defineCommand({
  name: 'INFO',
  usage: 'INFO [section ...]',
  summary: 'Server, clients, memory, stats, replication, CPU figures, Redis-style, per worker too.',
  group: 'server',
  flags: ['loading', 'stale'],
  family: 'redis',
  minArgs: 0,
  maxArgs: Infinity,
  run: (ctx, args) =>
    new Verbatim(
      infoText(
        ctx,
        args.map((a) => a.toString('latin1').toLowerCase()),
      ),
    ),
});
