import { badArgument } from '../../errors.ts';
import { integerArg, notAnInteger } from '../args.ts';
import { defineCommand } from '../registry.ts';

export default defineCommand({
  name: 'SELECT',
  usage: 'SELECT <index>',
  summary: 'Accepts database 0 only: tcpool keeps no data, so it has one database.',
  group: 'connection',
  flags: ['loading', 'stale', 'fast'],
  family: 'redis',
  minArgs: 1,
  run: (_ctx, [index]) => {
    const n = integerArg(index);
    if (n === null) return notAnInteger;
    return n === 0 ? 'OK' : badArgument('DB index is out of range', 'ERR DB index is out of range');
  },
});
