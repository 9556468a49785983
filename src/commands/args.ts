// Argument parsing shared by commands, with Redis's error texts over RESP.
import { badArgument, type ReplyError } from '../errors.ts';

export const notAnInteger = badArgument(
  'Value is not an integer or out of range',
  'ERR value is not an integer or out of range',
);

/** A signed decimal integer argument, or null when it is not one. */
export function integerArg(arg: Buffer): number | null {
  const s = arg.toString('latin1');
  if (!/^-?[0-9]{1,15}$/.test(s)) return null;
  return Number(s);
}

/** The argument upper-cased, for keywords such as subcommand names. */
export function keyword(arg: Buffer): string {
  return arg.toString('latin1').toUpperCase();
}

export function unknownSubcommand(command: string, sub: Buffer): ReplyError {
  const name = sub.toString('utf8').replace(/[\r\n]/g, ' ');
  return badArgument(
    `Unknown subcommand '${name}' (try ${command} HELP)`,
    `ERR unknown subcommand '${name}'. Try ${command} HELP.`,
  );
}

export function syntaxError(): ReplyError {
  return badArgument('Syntax error', 'ERR syntax error');
}
