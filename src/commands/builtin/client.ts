import { badArgument } from '../../errors.ts';
import { Verbatim } from '../../protocol/reply.ts';
import { integerArg, keyword, syntaxError, unknownSubcommand } from '../args.ts';
import type { ClientInfo } from '../context.ts';
import { defineCommand } from '../registry.ts';

/** As Redis: printable ASCII without spaces (an empty name clears it). */
export function validClientName(name: string): boolean {
  return /^[!-~]*$/.test(name);
}

const badName = badArgument(
  'Client names cannot contain spaces, newlines or special characters',
  'ERR Client names cannot contain spaces, newlines or special characters.',
);

/** One CLIENT LIST line, in Redis's field order, plus tcpool's proto=, transport= and worker=. */
export function formatClient(c: ClientInfo): string {
  return (
    `id=${c.id} addr=${c.addr} laddr=${c.laddr} name=${c.name} age=${c.age} idle=${c.idle} flags=N db=0 ` +
    `sub=0 psub=0 ssub=0 multi=-1 qbuf=${c.qbuf} omem=${c.omem} cmd=${c.cmd} user=default resp=${c.resp} ` +
    `lib-name=${c.libName} lib-ver=${c.libVer} proto=${c.protocol} transport=${c.transport} worker=${c.worker}`
  );
}

const HELP = [
  'CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'ID',
  '    Return the ID of the current connection.',
  'GETNAME',
  '    Return the name of the current connection.',
  'SETNAME <name>',
  '    Assign the name <name> to the current connection.',
  'SETINFO <LIB-NAME|LIB-VER> <value>',
  '    Set client library name or version.',
  'INFO',
  '    Return information about the current client connection.',
  'LIST [TYPE NORMAL] [ID <id> [<id> ...]]',
  '    Return information about client connections, on every worker.',
  'HELP',
  '    Print this help.',
];

export default defineCommand({
  name: 'CLIENT',
  usage: 'CLIENT ID|GETNAME|SETNAME|SETINFO|INFO|LIST|HELP',
  summary: 'Inspects and names client connections.',
  group: 'connection',
  flags: ['loading', 'stale'],
  family: 'redis',
  minArgs: 1,
  maxArgs: Infinity,
  run: (ctx, args) => {
    const sub = keyword(args[0]);
    const rest = args.length - 1;
    switch (sub) {
      case 'ID':
        return rest === 0 ? ctx.clientId : syntaxError();
      case 'GETNAME':
        return rest === 0 ? (ctx.clientName === '' ? null : ctx.clientName) : syntaxError();
      case 'SETNAME': {
        if (rest !== 1) return syntaxError();
        const name = args[1].toString('utf8');
        if (!validClientName(name)) return badName;
        ctx.clientName = name;
        return 'OK';
      }
      case 'SETINFO': {
        if (rest !== 2) return syntaxError();
        const attr = keyword(args[1]);
        const value = args[2].toString('utf8');
        if (!validClientName(value)) {
          return badArgument(
            `${attr} cannot contain spaces, newlines or special characters`,
            `ERR ${attr} cannot contain spaces, newlines or special characters.`,
          );
        }
        if (attr === 'LIB-NAME') ctx.libName = value;
        else if (attr === 'LIB-VER') ctx.libVer = value;
        else
          return badArgument(
            `Unrecognized option '${args[1]}'`,
            `ERR Unrecognized option '${args[1]}'`,
          );
        return 'OK';
      }
      case 'INFO':
        return rest === 0 ? new Verbatim(formatClient(ctx.clientInfo()) + '\n') : syntaxError();
      case 'LIST': {
        let ids: Set<number> | null = null;
        for (let i = 1; i < args.length; i++) {
          const option = keyword(args[i]);
          if (option === 'TYPE' && i + 1 < args.length) {
            if (keyword(args[++i]) !== 'NORMAL') return new Verbatim('');
          } else if (option === 'ID' && i + 1 < args.length) {
            ids = new Set();
            while (i + 1 < args.length) {
              const id = integerArg(args[++i]);
              if (id === null || id < 1)
                return badArgument('Invalid client ID', 'ERR Invalid client ID');
              ids.add(id);
            }
          } else {
            return syntaxError();
          }
        }
        return ctx.listClients().then((clients) => {
          const shown = ids === null ? clients : clients.filter((c) => ids.has(c.id));
          return new Verbatim(shown.map((c) => formatClient(c) + '\n').join(''));
        });
      }
      case 'HELP':
        return HELP;
      default:
        return unknownSubcommand('CLIENT', args[0]);
    }
  },
});
