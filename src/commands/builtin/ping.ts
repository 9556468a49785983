import { Preencoded } from '../../protocol/reply.ts';
import { defineCommand } from '../registry.ts';

const PONG = new Preencoded('PONG');
const EMPTY = Buffer.alloc(0);
const PONG_WORD = Buffer.from('pong');

export default defineCommand({
  name: 'PING',
  usage: 'PING [message]',
  summary: 'Replies PONG, or the message when one is given.',
  group: 'connection',
  flags: ['fast', 'stale', 'loading'],
  minArgs: 0,
  maxArgs: 1,
  restOfLine: true,
  run: (ctx, args) => {
    // RESP2 in subscribe mode, as Redis: a ["pong", message] array, so that a client reading
    // messages can tell it from one (RESP3 and the line protocol keep the plain reply).
    if (ctx.subscriptions !== 0 && ctx.respVersion === 2 && ctx.protocol === 'resp')
      return [PONG_WORD, args.length === 0 ? EMPTY : args[0]];
    return args.length === 0 ? PONG : args[0];
  },
});
