import { defineCommand } from '../registry.ts';

export default defineCommand({
  name: 'QUIT',
  usage: 'QUIT',
  summary: 'Replies Goodbye and closes the connection.',
  run: (ctx) => {
    ctx.closeAfterReply();
    return 'Goodbye';
  },
});
