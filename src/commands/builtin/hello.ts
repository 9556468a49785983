import { badArgument, codes, ReplyError, replyErrors } from '../../errors.ts';
import { authReply } from './auth.ts';
import { RespMap } from '../../protocol/reply.ts';
import { integerArg, keyword } from '../args.ts';
import type { CommandContext } from '../context.ts';
import { defineCommand } from '../registry.ts';
import { validClientName } from './client.ts';

/** The Redis version whose protocol tcpool speaks, for clients that check it. */
export const REDIS_COMPAT_VERSION = '7.2.0';

export function helloMap(ctx: CommandContext): RespMap {
  return RespMap.from({
    server: 'tcpool',
    version: REDIS_COMPAT_VERSION,
    tcpool_version: ctx.server.version,
    proto: ctx.respVersion,
    id: ctx.clientId,
    mode: 'standalone',
    role: 'master',
    modules: [],
  });
}

export default defineCommand({
  name: 'HELLO',
  usage: 'HELLO [protover [AUTH username password] [SETNAME clientname]]',
  summary: 'Switches to RESP2 or RESP3 and describes the server.',
  group: 'connection',
  flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth', 'allow_busy'],
  family: 'redis',
  minArgs: 0,
  maxArgs: 6,
  run: async (ctx, args) => {
    let version = ctx.respVersion;
    if (args.length > 0) {
      const v = integerArg(args[0]);
      if (v === null) {
        return badArgument(
          'Protocol version is not an integer',
          'ERR Protocol version is not an integer or out of range',
        );
      }
      if (v !== 2 && v !== 3) {
        return new ReplyError(
          codes.ERR_BAD_ARGUMENT,
          'Unsupported protocol version',
          'NOPROTO unsupported protocol version',
        );
      }
      version = v;
    }
    let name: string | null = null;
    let credentials: [string, Buffer] | null = null;
    for (let i = 1; i < args.length; i++) {
      const option = keyword(args[i]);
      const left = args.length - i - 1;
      if (option === 'AUTH' && left >= 2) {
        credentials = [args[i + 1].toString('utf8'), args[i + 2]];
        i += 2;
      } else if (option === 'SETNAME' && left >= 1) {
        name = args[++i].toString('utf8');
        if (!validClientName(name)) {
          return badArgument(
            'Client names cannot contain spaces, newlines or special characters',
            'ERR Client names cannot contain spaces, newlines or special characters.',
          );
        }
      } else {
        const text = args[i].toString('utf8');
        return badArgument(
          `Syntax error in HELLO option '${text}'`,
          `ERR Syntax error in HELLO option '${text}'`,
        );
      }
    }
    if (credentials !== null) {
      const refused = await authReply(ctx, credentials[1], credentials[0]);
      // Without configured AUTH, Redis's default user takes any password: so does tcpool.
      if (refused !== null && refused !== replyErrors.authNotConfigured) return refused;
    }
    if (!ctx.authenticated) return replyErrors.authRequired;
    ctx.respVersion = version;
    if (name !== null) ctx.clientName = name;
    return helloMap(ctx);
  },
});
