import { defineCommand } from '../registry.ts';

export default defineCommand({
  name: 'RESET',
  usage: 'RESET',
  summary: 'Resets the connection: RESP2, no name, no transaction.',
  group: 'connection',
  flags: ['noscript', 'loading', 'stale', 'fast', 'allow_busy'],
  family: 'redis',
  run: (ctx) => {
    ctx.respVersion = 2;
    ctx.clientName = '';
    ctx.transaction = null;
    return 'RESET';
  },
});
