import { RespMap, type Reply, Status } from '../../protocol/reply.ts';
import { keyword, unknownSubcommand } from '../args.ts';
import { argDocs } from '../declared-args.ts';
import type { CommandContext } from '../context.ts';
import { type CommandSpec, redisArity } from '../registry.ts';
import { defineCommand } from '../registry.ts';

/**
 * COMMAND INFO's array: name, arity, flags, first/last key, step, ACL categories, tips, key specs,
 * subcommands.
 */
function info(spec: CommandSpec): Reply {
  return [
    spec.name.toLowerCase(),
    redisArity(spec),
    spec.flags.map((f) => new Status(f)),
    0,
    0,
    0,
    [new Status(`@${spec.group}`)],
    [],
    [],
    [],
  ];
}

/** Arguments for redis-cli's hints, read from the usage line's simple "<arg>" and "[arg]" words. */
function argumentDocs(spec: CommandSpec): Reply[] | null {
  const words = spec.usage.split(' ').slice(1);
  const docs: Reply[] = [];
  for (const word of words) {
    const required = /^<([\w-]+)>$/.exec(word);
    const optional = /^\[([\w-]+)\]$/.exec(word);
    if (required) docs.push(RespMap.from({ name: required[1], type: 'string' }));
    else if (optional)
      docs.push(
        RespMap.from({ name: optional[1], type: 'string', flags: [new Status('optional')] }),
      );
    else return null;
  }
  return docs;
}

/** Redis's argument doc map for one declared argument (declared-args.ts's argDocs). */
function toDoc(d: Record<string, unknown>): RespMap {
  const doc: Record<string, Reply> = { name: d.name as string, type: d.type as string };
  if (typeof d.token === 'string') doc.token = d.token;
  if (typeof d.display_text === 'string') doc.display_text = d.display_text;
  const flags: Reply[] = [];
  if (d.optional === true) flags.push(new Status('optional'));
  if (d.multiple === true) flags.push(new Status('multiple'));
  if (flags.length > 0) doc.flags = flags;
  if (Array.isArray(d.arguments)) doc.arguments = d.arguments.map(toDoc);
  return RespMap.from(doc);
}

function docs(spec: CommandSpec): RespMap {
  const doc: Record<string, Reply> = {
    summary: spec.summary,
    since: '1.0.0',
    group: spec.group,
    complexity: 'O(1)',
  };
  const args = spec.args !== null ? argDocs(spec.args).map(toDoc) : argumentDocs(spec);
  if (args !== null && args.length > 0) doc.arguments = args;
  return RespMap.from(doc);
}

function named(ctx: CommandContext, names: Buffer[]): (CommandSpec | undefined)[] {
  return names.map((n) => ctx.registry.lookup(n.toString('latin1')));
}

export default defineCommand({
  name: 'COMMAND',
  usage: 'COMMAND [COUNT|LIST|INFO [name ...]|DOCS [name ...]]',
  summary: "Describes the commands, for clients and redis-cli's hints.",
  group: 'server',
  flags: ['loading', 'stale'],
  family: 'redis',
  minArgs: 0,
  maxArgs: Infinity,
  run: (ctx, args) => {
    const all = ctx.registry.list();
    if (args.length === 0) return all.map(info);
    const sub = keyword(args[0]);
    const names = args.slice(1);
    switch (sub) {
      case 'COUNT':
        return all.length;
      case 'LIST':
        return all.map((c) => c.name.toLowerCase());
      case 'INFO':
        return (names.length === 0 ? all : named(ctx, names)).map((c) =>
          c === undefined ? null : info(c),
        );
      case 'DOCS': {
        const specs = names.length === 0 ? all : named(ctx, names).filter((c) => c !== undefined);
        return new RespMap(specs.map((c) => [c.name.toLowerCase(), docs(c)] as const));
      }
      default:
        return unknownSubcommand('COMMAND', args[0]);
    }
  },
});
