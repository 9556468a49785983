import { arch, release, type as osType } from 'node:os';
import { Verbatim } from '../../protocol/reply.ts';
import { COUNTERS } from '../../stats/counters.ts';
import type { CommandContext } from '../context.ts';
import { defineCommand } from '../registry.ts';
import { REDIS_COMPAT_VERSION } from './hello.ts';

type Section = (ctx: CommandContext) => string[];

/** Redis-style sections with tcpool's real figures. */
const sections: Record<string, Section> = {
  server: (ctx) => {
    const uptime = Math.floor((Date.now() - ctx.server.startedAt) / 1000);
    return [
      `redis_version:${REDIS_COMPAT_VERSION}`,
      `tcpool_version:${ctx.server.version}`,
      'redis_mode:standalone',
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
  ],
  persistence: () => ['loading:0'],
  stats: (ctx) => {
    const s = ctx.stats.snapshot();
    return [
      `total_connections_received:${s.connections}`,
      `total_commands_processed:${s.commands}`,
      `rejected_connections:${s.rejected}`,
      `worker_restarts:${s.restarts}`,
      ...COUNTERS.slice(3).map((c) => `${c}:${s.totals[c]}`),
      ...s.workers.map(
        (w, i) =>
          `worker${i}:active=${w.active},connections=${w.connections},commands=${w.commands},rejected=${w.rejected}`,
      ),
    ];
  },
};

const ALL = Object.keys(sections);

export function infoText(ctx: CommandContext, wanted: string[]): string {
  let names =
    wanted.length === 0
      ? ALL
      : wanted.flatMap((w) => (['all', 'default', 'everything'].includes(w) ? ALL : [w]));
  names = ALL.filter((n) => names.includes(n));
  return names
    .map((n) => `# ${n[0].toUpperCase()}${n.slice(1)}\r\n${sections[n](ctx).join('\r\n')}\r\n`)
    .join('\r\n');
}

export default defineCommand({
  name: 'INFO',
  usage: 'INFO [section ...]',
  summary: 'Server, clients and stats figures, Redis-style, per worker too.',
  group: 'server',
  flags: ['loading', 'stale'],
  respOnly: true,
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
