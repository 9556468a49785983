// `tcpool` entry: dispatches to a subcommand.
import { bench } from './bench.ts';
import { client } from './client.ts';
import { hashToken } from './hash-token.ts';
import { mainHelp } from './help.ts';
import { serve } from './serve.ts';
import { VERSION } from '../version.ts';

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'client':
      return client(rest);
    case 'bench':
      return bench(rest);
    case 'hash-token':
      return hashToken(rest);
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
