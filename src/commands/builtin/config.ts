import { configKeys } from '../../config/schema.ts';
import { notSupported } from '../../errors.ts';
import { RespMap } from '../../protocol/reply.ts';
import { keyword, unknownSubcommand } from '../args.ts';
import type { CommandContext } from '../context.ts';
import { defineCommand } from '../registry.ts';

/**
 * Redis's names for tcpool's settings, and Redis settings whose answer is fixed here (no
 * persistence).
 */
function settings(ctx: CommandContext): [string, string][] {
  const c = ctx.server.config;
  return [
    ...configKeys
      .filter((k) => k !== 'AUTH_TOKENS') // never hand out the token hashes
      .map((k) => [k.toLowerCase(), String(c[k])] as [string, string]),
    ['port', String(ctx.server.port)],
    ['bind', c.HOST],
    ['maxclients', String(c.MAX_CONNECTIONS)],
    ['proto-max-bulk-len', String(c.MAX_BULK_BYTES)],
    ['client-query-buffer-limit', String(c.MAX_REQUEST_BYTES)],
    ['databases', '1'],
    ['save', ''],
    ['appendonly', 'no'],
  ];
}

/** Redis's glob subset: * and ?, case-insensitive. */
function glob(pattern: string): RegExp {
  const escaped = pattern
    .toLowerCase()
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

const readOnly = notSupported(
  'CONFIG SET',
  'settings change only by restart (flags, environment, config file)',
);

export default defineCommand({
  name: 'CONFIG',
  usage: 'CONFIG GET <pattern> [pattern ...]',
  summary:
    "Reads settings, under tcpool's names (thread_pool_size) and Redis's (maxclients); read-only.",
  group: 'server',
  flags: ['loading', 'stale'],
  family: 'redis',
  minArgs: 1,
  maxArgs: Infinity,
  run: (ctx, args) => {
    const sub = keyword(args[0]);
    if (sub === 'SET' || sub === 'REWRITE' || sub === 'RESETSTAT') return readOnly;
    if (sub !== 'GET') return unknownSubcommand('CONFIG', args[0]);
    const patterns = args.slice(1).map((a) => glob(a.toString('utf8')));
    return new RespMap(settings(ctx).filter(([name]) => patterns.some((p) => p.test(name))));
  },
});
