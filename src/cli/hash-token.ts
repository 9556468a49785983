// `tcpool hash-token`: turns a token into the hash that AUTH_TOKENS stores.
import { createInterface } from 'node:readline';
import { generateToken, hashTokenScrypt, hashTokenSha256 } from '../auth/tokens.ts';
import { usageError } from '../errors.ts';
import { parseOptions } from './options.ts';

export function hashTokenHelp(): string {
  return [
    'Usage: tcpool hash-token [--scrypt] [--generate | token]',
    '',
    'Prints the hash of a token for AUTH_TOKENS (or a line of AUTH_TOKENS_FILE). The token comes from',
    'the argument, else the first line of standard input. --generate makes a random 256-bit token and',
    'prints it too. sha256 suits long random tokens; --scrypt is for tokens a person chose (slower to',
    'check, and to guess).',
  ].join('\n');
}

async function firstLine(): Promise<string> {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    rl.close();
    return line;
  }
  return '';
}

export async function hashToken(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(
    argv,
    {
      scrypt: { type: 'boolean' },
      generate: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    'hash-token',
  );
  if (values.help) {
    process.stdout.write(hashTokenHelp() + '\n');
    return 0;
  }
  if (positionals.length > 1 || (values.generate && positionals.length > 0))
    throw usageError('give one token, or --generate (see tcpool hash-token --help)');
  const token = values.generate ? generateToken() : (positionals[0] ?? (await firstLine()));
  if (token === '') throw usageError('the token is empty');
  const hash = values.scrypt ? await hashTokenScrypt(token) : hashTokenSha256(token);
  if (values.generate) process.stdout.write(`token: ${token}\nhash:  ${hash}\n`);
  else process.stdout.write(`${hash}\n`);
  return 0;
}
