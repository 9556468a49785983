// `tcpool` entry: dispatches to a subcommand.
import { readFileSync } from 'node:fs';
import { client } from './client.ts';
import { mainHelp } from './help.ts';
import { serve } from './serve.ts';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'client':
      return client(rest);
    case '-v':
    case '--version':
      process.stdout.write(`${version()}\n`);
      return 0;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(mainHelp(version()) + '\n');
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`tcpool: unknown command "${command}" (try tcpool --help)\n`);
      return 2;
  }
}
