import { codes, ReplyError } from '../../errors.ts';
import { defineCommand } from '../registry.ts';

export default defineCommand({
  name: 'HELP',
  usage: 'HELP [command]',
  summary: 'Lists the commands, or describes one.',
  group: 'server',
  flags: ['loading', 'stale', 'fast', 'no_auth'],
  minArgs: 0,
  maxArgs: 1,
  run: (ctx, args) => {
    if (args.length === 0) {
      return `Commands: ${ctx.registry
        .list((spec) => ctx.offers(spec))
        .map((c) => c.usage)
        .join(', ')}`;
    }
    const name = args[0].toString('latin1');
    const spec = ctx.registry.lookup(name);
    if (spec === undefined || !ctx.offers(spec)) {
      return new ReplyError(codes.ERR_UNKNOWN_COMMAND, `Unknown command '${name}'`);
    }
    return spec.summary === '' ? spec.usage : `${spec.usage}: ${spec.summary}`;
  },
});
