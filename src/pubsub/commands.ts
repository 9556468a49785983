// SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH and PUBSUB, with Redis's replies:
// one confirmation per channel (RESP2 arrays, RESP3 pushes), and on the line protocol one line
// per channel, `SUBSCRIBE <channel> <count>`, then `MESSAGE <channel> <payload>` lines.
import { keyword, unknownSubcommand } from '../commands/args.ts';
import type { CommandContext } from '../commands/context.ts';
import { type CommandSpec, defineCommand } from '../commands/registry.ts';
import { subscribeNeedsStream } from '../errors.ts';
import { Push, type Reply } from '../protocol/reply.ts';
import { currentHub, nameOf, type PubSubClient } from './hub.ts';

/** Commands a RESP2 connection may send while subscribed (Redis's rule). */
export const SUBSCRIBE_MODE_COMMANDS = new Set([
  'SUBSCRIBE',
  'UNSUBSCRIBE',
  'PSUBSCRIBE',
  'PUNSUBSCRIBE',
  'SSUBSCRIBE',
  'SUNSUBSCRIBE',
  'PING',
  'QUIT',
  'RESET',
]);

/** Every confirmation but the last is sent at once; the last is the command's reply. */
function confirm(ctx: CommandContext, kind: string, list: [string | null, number][]): Reply {
  const encode = ([name, count]: [string | null, number]): Reply =>
    ctx.protocol === 'line'
      ? `${kind.toUpperCase()} ${name ?? ''} ${count}`.replace('  ', ' ')
      : new Push([kind, name === null ? null : Buffer.from(name, 'latin1'), count]);
  for (let i = 0; i < list.length - 1; i++) ctx.send(encode(list[i]));
  return encode(list[list.length - 1]);
}

const names = (args: Buffer[]) => args.map(nameOf);

function subscribeCommand(name: string, kind: 'ch' | 'pat', summary: string): CommandSpec {
  return defineCommand({
    name,
    usage: `${name} <${kind === 'ch' ? 'channel' : 'pattern'}> ...`,
    summary,
    group: 'pubsub',
    flags: ['pubsub', 'noscript', 'loading', 'stale'],
    minArgs: 1,
    maxArgs: Infinity,
    run: (ctx, args) =>
      !ctx.pushes
        ? subscribeNeedsStream(name)
        : confirm(
            ctx,
            name.toLowerCase(),
            currentHub().subscribe(ctx as unknown as PubSubClient, names(args), kind),
          ),
  });
}

function unsubscribeCommand(name: string, kind: 'ch' | 'pat', summary: string): CommandSpec {
  return defineCommand({
    name,
    usage: `${name} [${kind === 'ch' ? 'channel' : 'pattern'} ...]`,
    summary,
    group: 'pubsub',
    flags: ['pubsub', 'noscript', 'loading', 'stale'],
    minArgs: 0,
    maxArgs: Infinity,
    run: (ctx, args) =>
      !ctx.pushes
        ? subscribeNeedsStream(name)
        : confirm(
            ctx,
            name.toLowerCase(),
            currentHub().unsubscribe(
              ctx as unknown as PubSubClient,
              args.length === 0 ? null : names(args),
              kind,
            ),
          ),
  });
}

export const pubsubCommands: CommandSpec[] = [
  subscribeCommand(
    'SUBSCRIBE',
    'ch',
    'Receives the messages published to the channels, from every worker.',
  ),
  unsubscribeCommand(
    'UNSUBSCRIBE',
    'ch',
    'Stops receiving from the channels (all when none is named).',
  ),
  subscribeCommand(
    'PSUBSCRIBE',
    'pat',
    'Receives the messages of every channel matching the glob patterns.',
  ),
  unsubscribeCommand(
    'PUNSUBSCRIBE',
    'pat',
    'Stops receiving for the patterns (all when none is named).',
  ),
  defineCommand({
    name: 'PUBLISH',
    usage: 'PUBLISH <channel> <message>',
    summary:
      'Sends the message to the subscribers of the channel in every worker; replies how many.',
    group: 'pubsub',
    flags: ['pubsub', 'loading', 'stale', 'fast'],
    minArgs: 2,
    maxArgs: Infinity,
    // The line protocol splits words: the message is the rest, joined by single spaces.
    run: (ctx, [channel, ...words]) =>
      ctx.publish(
        channel,
        words.length === 1
          ? words[0]
          : Buffer.from(words.map((w) => w.toString('latin1')).join(' '), 'latin1'),
      ),
  }),
  defineCommand({
    name: 'PUBSUB',
    usage: 'PUBSUB CHANNELS|NUMSUB|NUMPAT [...]',
    summary: 'Active channels, subscribers per channel, and patterns, across workers.',
    group: 'pubsub',
    flags: ['pubsub', 'loading', 'stale'],
    minArgs: 1,
    maxArgs: Infinity,
    run: (_ctx, args) => {
      const hub = currentHub();
      const latin1 = (s: string) => Buffer.from(s, 'latin1');
      switch (keyword(args[0])) {
        case 'CHANNELS':
          return hub.activeChannels(args.length > 1 ? nameOf(args[1]) : null).map(latin1);
        case 'NUMSUB':
          return args.slice(1).flatMap((c) => [c, hub.numsub(nameOf(c))]);
        case 'NUMPAT':
          return hub.numpat();
        default:
          return unknownSubcommand('PUBSUB', args[0]);
      }
    },
  }),
];
