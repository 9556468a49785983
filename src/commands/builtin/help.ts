import { ReplyError, codes } from '../../errors.ts';
import { defineCommand } from '../registry.ts';

export default defineCommand({
  name: 'HELP',
  usage: 'HELP [command]',
  summary: 'Lists the commands, or describes one.',
  minArgs: 0,
  maxArgs: 1,
  run: (ctx, args) => {
    if (args.length === 0) {
      return `Commands: ${ctx.registry.list().map((c) => c.usage).join(', ')}`;
    }
    const spec = ctx.registry.lookup(args[0].toString('latin1'));
    if (!spec) return new ReplyError(codes.ERR_UNKNOWN_COMMAND, `Unknown command '${args[0].toString('latin1')}'`);
    return spec.summary === '' ? spec.usage : `${spec.usage}: ${spec.summary}`;
  },
});
