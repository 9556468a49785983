// `tcpool` entry: dispatches to a subcommand, and is the one place where a failure becomes a line
// on stderr and an exit status (see exitStatus in src/errors.ts). Anything thrown that is not a
// TcpoolError is a bug: it is not caught here, so it surfaces with its stack trace.
import { exitStatus, TcpoolError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { bench } from './bench.ts';
import { client } from './client.ts';
import { ctl } from './ctl.ts';
import { hashToken } from './hash-token.ts';
import { mainHelp } from './help.ts';
import { serve } from './serve.ts';

export type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  serve,
  client,
  bench,
  'hash-token': hashToken,
  ctl,
};

/** `serve` bounds its own wait for a stdout nobody reads (SHUTDOWN_TIMEOUT_MS, src/log/writer.ts). */
const BOUNDS_ITS_OUTPUT = new Set(['serve']);

export async function main(argv: string[], commands = COMMANDS): Promise<number> {
  const status = await run(argv, commands);
  // The other commands' output is their result: let a pipe take all of it, since process.exit()
  // drops what is still queued.
  if (!BOUNDS_ITS_OUTPUT.has(argv[0])) await flushed([process.stdout, process.stderr]);
  return status;
}

async function run(argv: string[], commands: Record<string, Command>): Promise<number> {
  try {
    return await dispatch(argv, commands);
  } catch (err) {
    if (!(err instanceof TcpoolError)) throw err;
    process.stderr.write(`tcpool: ${err.message}\n`);
    return exitStatus(err);
  }
}

function flushed(streams: NodeJS.WriteStream[]): Promise<unknown> {
  return Promise.all(streams.map((s) => new Promise((resolve) => s.write('', resolve))));
}

async function dispatch(argv: string[], commands: Record<string, Command>): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== undefined && Object.hasOwn(commands, command)) return commands[command](rest);
  switch (command) {
    case '-v':
    case '--version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(mainHelp(VERSION) + '\n');
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`tcpool: unknown command "${command}" (try tcpool --help)\n`);
      return 2;
  }
}
