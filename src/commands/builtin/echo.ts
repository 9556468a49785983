import { defineCommand } from '../registry.ts';

export default defineCommand({
  name: 'ECHO',
  usage: 'ECHO <message>',
  summary: 'Replies the message, byte for byte.',
  group: 'connection',
  flags: ['fast', 'stale', 'loading'],
  minArgs: 1,
  restOfLine: true,
  run: (_ctx, args) => args[0],
});
