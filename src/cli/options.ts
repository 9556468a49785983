// parseArgs with messages a person can act on instead of Node's internal wording.
import { parseArgs } from 'node:util';
import { InvalidValue, parseInteger } from '../config/schema.ts';
import { badIntegerOption, ConfigError, codes } from '../errors.ts';

export type Options = Record<
  string,
  { type: 'string' | 'boolean'; short?: string; default?: string }
>;

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export function parseOptions(args: string[], options: Options, command: string): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args,
      options,
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Parsed['values'], positionals };
  } catch (err) {
    const e = err as Error & { code?: string };
    const option = /'(-[^']*)'/.exec(e.message)?.[1] ?? '';
    const hint = `(see tcpool ${command} --help)`;
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')
      throw new ConfigError(codes.ERR_CONFIG_OPTION, `Unknown option ${option} ${hint}`);
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      throw new ConfigError(
        codes.ERR_CONFIG_OPTION,
        `Option ${option.split(' ')[0] || 'given'} needs a value ${hint}`,
      );
    }
    throw new ConfigError(codes.ERR_CONFIG_OPTION, `${e.message} ${hint}`);
  }
}

/** `--name raw` as a whole number in [min, max], with the same parser as the config keys. */
export function integerOption(
  name: string,
  raw: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  try {
    return parseInteger(raw, min, max);
  } catch (err) {
    if (err instanceof InvalidValue) throw badIntegerOption(name, raw, min, max);
    throw err;
  }
}
