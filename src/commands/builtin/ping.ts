import { Preencoded } from '../../protocol/reply.ts';
import { defineCommand } from '../registry.ts';

const PONG = new Preencoded('PONG');

export default defineCommand({
  name: 'PING',
  usage: 'PING [message]',
  summary: 'Replies PONG, or the message when one is given.',
  group: 'connection',
  flags: ['fast', 'stale', 'loading'],
  minArgs: 0,
  maxArgs: 1,
  restOfLine: true,
  run: (_ctx, args) => (args.length === 0 ? PONG : args[0]),
});
