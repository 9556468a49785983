// One config loader: flags, then environment variables, then a KEY=VALUE file, then defaults.
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, codes } from '../errors.ts';
import { isLoopback } from '../net/address.ts';
import {
  type Config,
  type ConfigKey,
  configKeys,
  flagName,
  formatAutoscale,
  InvalidValue,
  isConfigKey,
  schema,
  TOKEN_HASH,
} from './schema.ts';

export interface LoadOptions {
  /** Raw flag values by key, as given on the command line. */
  flags?: Partial<Record<ConfigKey, string>>;
  env?: NodeJS.ProcessEnv;
  /** Explicit config file (positional argument or --config); it must exist. */
  file?: string;
  /** Used when no file is given: loaded only if it exists (the original's ./config.txt). */
  defaultFile?: string;
}

export interface LoadedConfig {
  config: Config;
  /** Where each key's value came from: "default", "env", "flag" or "file:line". */
  origin: Record<ConfigKey, string>;
  /** The file actually read, if any. */
  file: string | null;
  warnings: string[];
}

interface RawValue {
  raw: string;
  origin: string;
}

/** Parses KEY=VALUE lines: `#` starts a comment line, blank lines are skipped, whitespace trimmed. */
export function parseConfigFile(
  text: string,
  path: string,
  warnings: string[],
): Map<ConfigKey, RawValue> {
  const values = new Map<ConfigKey, RawValue>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `${path}:${i + 1}`;
    const eq = line.indexOf('=');
    if (eq <= 0) {
      throw new ConfigError(codes.ERR_CONFIG_SYNTAX, `${where}: expected KEY=VALUE, got "${line}"`);
    }
    const key = line.slice(0, eq).trim();
    const raw = line.slice(eq + 1).trim();
    if (!isConfigKey(key)) {
      warnings.push(`Unknown config key ${key} at ${where} (ignored)`);
      continue;
    }
    const earlier = values.get(key);
    if (earlier) warnings.push(`${key} at ${where} overrides the value at ${earlier.origin}`);
    values.set(key, { raw, origin: where });
  }
  return values;
}

function describeOrigin(key: ConfigKey, origin: string): string {
  if (origin === 'env') return `from environment variable ${key}`;
  if (origin === 'flag') return `from flag --${flagName(key)}`;
  if (origin === 'default') return 'not set';
  return `at ${origin}`;
}

function parseValue<K extends ConfigKey>(key: K, value: RawValue): Config[K] {
  try {
    return schema[key].parse(value.raw);
  } catch (err) {
    if (!(err instanceof InvalidValue)) throw err;
    throw new ConfigError(
      codes.ERR_CONFIG_VALUE,
      `Invalid ${key} "${value.raw}" (${describeOrigin(key, value.origin)}): must be ${schema[key].allowed}`,
    );
  }
}

function readFile(path: string, what = 'config file'): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw new ConfigError(codes.ERR_CONFIG_FILE, `Cannot read ${what} ${path}: ${why}`);
  }
}

/**
 * One token hash a line; "#" comments and blank lines skipped; a bad line is named by file:line.
 */
function readTokenFile(path: string): string[] {
  const hashes: string[] = [];
  readFile(path, 'AUTH_TOKENS_FILE')
    .split(/\r?\n/)
    .forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      if (!TOKEN_HASH.test(line)) {
        throw new ConfigError(
          codes.ERR_CONFIG_VALUE,
          `${path}:${i + 1}: not a token hash (make one with tcpool hash-token; plain tokens are refused)`,
        );
      }
      hashes.push(line);
    });
  return hashes;
}

export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const warnings: string[] = [];
  let file: string | null = null;
  if (options.file !== undefined) file = options.file;
  else if (options.defaultFile !== undefined && existsSync(options.defaultFile))
    file = options.defaultFile;
  const fromFile =
    file === null
      ? new Map<ConfigKey, RawValue>()
      : parseConfigFile(readFile(file), file, warnings);

  const config = {} as Record<ConfigKey, unknown>;
  const origin = {} as Record<ConfigKey, string>;
  for (const key of configKeys) {
    const flag = options.flags?.[key];
    const envValue = env[key];
    let value: RawValue | undefined;
    if (flag !== undefined) value = { raw: flag, origin: 'flag' };
    else if (envValue !== undefined) value = { raw: envValue.trim(), origin: 'env' };
    else value = fromFile.get(key);
    if (value === undefined) {
      config[key] = schema[key].default();
      origin[key] = 'default';
    } else {
      config[key] = parseValue(key, value);
      origin[key] = value.origin;
    }
  }
  const result = config as unknown as Config;
  const fail = (key: ConfigKey, why: string): never => {
    throw new ConfigError(
      codes.ERR_CONFIG_VALUE,
      `Invalid ${key} "${String(result[key])}" (${describeOrigin(key, origin[key])}): ${why}`,
    );
  };
  if (result.PORT === -1 && result.TLS_PORT === 0 && result.WS_PORT === 0 && result.HTTP_PORT === 0)
    fail('PORT', 'off needs TLS_PORT, WS_PORT or HTTP_PORT, or nothing would listen');
  const tlsUser =
    result.TLS_PORT !== 0
      ? 'TLS_PORT'
      : result.HTTP_PORT !== 0 && result.HTTP_TLS
        ? 'HTTP_TLS'
        : result.WS_PORT !== 0 && result.WS_TLS
          ? 'WS_TLS'
          : null;
  if (tlsUser !== null) {
    if (result.TLS_CERT === '')
      fail('TLS_CERT', `${tlsUser} needs a certificate (TLS_CERT) and its key (TLS_KEY)`);
    if (result.TLS_KEY === '')
      fail('TLS_KEY', `${tlsUser} needs a certificate (TLS_CERT) and its key (TLS_KEY)`);
  }
  if (result.TLS_PORT !== 0 && result.TLS_PORT === result.PORT)
    fail('TLS_PORT', 'must differ from PORT');
  for (const key of ['WS_PORT', 'HTTP_PORT'] as const) {
    const port = result[key];
    if (port !== 0 && (port === result.PORT || port === result.TLS_PORT))
      fail(key, 'must differ from PORT and TLS_PORT');
  }
  if (
    result.WS_PORT !== 0 &&
    result.WS_PORT === result.HTTP_PORT &&
    result.WS_TLS !== result.HTTP_TLS
  )
    fail('WS_TLS', 'WS_PORT equals HTTP_PORT, so WS_TLS must equal HTTP_TLS');
  if (result.AUTH_TOKENS_FILE !== '') {
    result.AUTH_TOKENS = [...result.AUTH_TOKENS, ...readTokenFile(result.AUTH_TOKENS_FILE)];
  }
  if (result.PROXY_PROTOCOL !== 'off' && result.TRUSTED_PROXIES.length === 0) {
    throw new ConfigError(
      codes.ERR_CONFIG_VALUE,
      `Invalid PROXY_PROTOCOL "${result.PROXY_PROTOCOL}" (${describeOrigin('PROXY_PROTOCOL', origin.PROXY_PROTOCOL)}): ` +
        'needs TRUSTED_PROXIES, the addresses of the proxies allowed to send PROXY headers',
    );
  }
  if (
    result.ADMIN_PORT !== -1 &&
    !isLoopback(result.ADMIN_HOST) &&
    result.ADMIN_TOKENS.length === 0
  )
    fail(
      'ADMIN_HOST',
      'the admin endpoint off loopback needs ADMIN_TOKENS (make one with tcpool hash-token), or ADMIN_PORT=off',
    );
  const autoscale = result.POOL_AUTOSCALE;
  if (autoscale !== null && autoscale.max > result.THREAD_POOL_MAX)
    throw new ConfigError(
      codes.ERR_CONFIG_VALUE,
      `Invalid POOL_AUTOSCALE "${formatAutoscale(autoscale)}" (${describeOrigin('POOL_AUTOSCALE', origin.POOL_AUTOSCALE)}): ` +
        `max must be at most THREAD_POOL_MAX (${result.THREAD_POOL_MAX}, ${describeOrigin('THREAD_POOL_MAX', origin.THREAD_POOL_MAX)}): the pool cannot grow past it`,
    );
  if (result.POOL_AUTOSCALE_LOW_PERCENT >= result.POOL_AUTOSCALE_HIGH_PERCENT)
    fail(
      'POOL_AUTOSCALE_LOW_PERCENT',
      `must be below POOL_AUTOSCALE_HIGH_PERCENT (${result.POOL_AUTOSCALE_HIGH_PERCENT}, ${describeOrigin('POOL_AUTOSCALE_HIGH_PERCENT', origin.POOL_AUTOSCALE_HIGH_PERCENT)})`,
    );
  if (result.MAX_REQUEST_BYTES < result.MAX_BULK_BYTES) {
    throw new ConfigError(
      codes.ERR_CONFIG_VALUE,
      `Invalid MAX_REQUEST_BYTES "${result.MAX_REQUEST_BYTES}" (${describeOrigin('MAX_REQUEST_BYTES', origin.MAX_REQUEST_BYTES)}): ` +
        `must be at least MAX_BULK_BYTES (${result.MAX_BULK_BYTES}, ${describeOrigin('MAX_BULK_BYTES', origin.MAX_BULK_BYTES)})`,
    );
  }
  return { config: result, origin, file, warnings };
}
