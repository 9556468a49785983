import { replyErrors } from '../../errors.ts';
import type { Reply } from '../../protocol/reply.ts';
import type { CommandContext } from '../context.ts';
import { defineCommand } from '../registry.ts';

/** The reply for an authentication outcome; shared with HELLO … AUTH. */
export async function authReply(
  ctx: CommandContext,
  token: Buffer,
  user: string | null,
): Promise<Reply | null> {
  const outcome = await ctx.authenticate(token, user);
  if (outcome === 'ok') return null;
  if (outcome === 'blocked') return replyErrors.authBlocked;
  if (outcome === 'not-configured') return replyErrors.authNotConfigured;
  return replyErrors.authInvalid;
}

export default defineCommand({
  name: 'AUTH',
  usage: 'AUTH [username] <token>',
  summary:
    'Authenticates the connection with a token (RESP: a password; the only user is "default").',
  group: 'connection',
  flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth', 'allow_busy'],
  minArgs: 1,
  maxArgs: 2,
  run: async (ctx, args) => {
    const user = args.length === 2 ? args[0].toString('utf8') : null;
    return (await authReply(ctx, args[args.length - 1], user)) ?? 'OK';
  },
});
