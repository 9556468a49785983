import { Forms, Preencoded } from '../../protocol/reply.ts';
import { defineCommand } from '../registry.ts';

const GOODBYE = new Forms('Goodbye', new Preencoded('OK'));

export default defineCommand({
  name: 'QUIT',
  usage: 'QUIT',
  summary: 'Replies Goodbye (over RESP: OK) and closes the connection.',
  group: 'connection',
  flags: ['allow_busy', 'noscript', 'loading', 'stale', 'fast', 'no_auth'],
  run: (ctx) => {
    ctx.closeAfterReply();
    return GOODBYE;
  },
});
