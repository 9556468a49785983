// Chat rooms on tcpool's pub/sub. A room is the channel `room.<name>`: clients join it with
// SUBSCRIBE (line clients get `MESSAGE room.lobby ann: hi` lines, Redis clients their usual
// messages), choose a nick with NICK and talk with SAY. Subscribers in every worker hear it.
import { CommandError, defineCommand } from 'tcpool';

/** Each connection's nick; a connection is the `ctx` its commands see. */
const nicks = new WeakMap<object, string>();

export default [
  defineCommand({
    name: 'NICK',
    summary: 'Sets the name your messages carry.',
    args: [{ name: 'nick', type: 'string', maxLength: 32 }],
    run: (ctx, { nick }) => {
      if (!/^[\w.-]+$/.test(nick))
        throw new CommandError('BADNICK', 'a nick is letters, digits, "_", "." or "-"');
      nicks.set(ctx, nick);
      ctx.whenClosed(() => nicks.delete(ctx));
      return 'OK';
    },
  }),
  defineCommand({
    name: 'SAY',
    summary: 'Says something in a room; replies how many heard it.',
    args: [
      { name: 'room', type: 'string', maxLength: 64 },
      { name: 'text', type: 'string', rest: true, maxLength: 4096 },
    ],
    run: (ctx, { room, text }) => {
      const nick = nicks.get(ctx);
      if (nick === undefined) throw new CommandError('NONICK', 'choose a nick first: NICK <name>');
      return ctx.publish(`room.${room}`, `${nick}: ${text}`);
    },
  }),
];
